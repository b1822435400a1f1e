// Hand-written SVG bar charts of benchmark ratios against their targets (no dependencies):
// one row per named figure, its bar scaled so that every target sits on one dashed line.

/** One figure with a target: `≥` (higher is better) or `<`, `≤` (a limit, lower is better). */
export interface ChartRow {
  name: string;
  value: number;
  op: '≥' | '<' | '≤';
  target: number;
  met: boolean;
}

const WIDTH = 880;
const LABEL_W = 280;
const PLOT_W = 380;
const ROW_H = 30;
const BAR_H = 18;
const TOP = 58;
const BOTTOM = 34;
/** The bar of a figure at its target ends here (fraction of the plot width). */
const TARGET_AT = 0.5;
const MET = '#2da44e';
const MISSED = '#cf222e';
const INK = '#1f2328';
const MUTED = '#656d76';

function escapeXml(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** 1234.5 → "1234.5", 0.123456 → "0.123". */
export function formatValue(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const abs = Math.abs(x);
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3;
  return String(Number(x.toFixed(digits)));
}

/**
 * A horizontal bar chart: each bar is value / target of its row, the dashed line is the target
 * of every row, green when met, red when missed; a bar longer than the plot is cut with a mark.
 */
export function barChartSvg(title: string, subtitle: string, rows: ChartRow[]): string {
  const height = TOP + rows.length * ROW_H + BOTTOM;
  const targetX = LABEL_W + PLOT_W * TARGET_AT;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="-apple-system, 'Segoe UI', Helvetica, Arial, sans-serif" font-size="13">`,
    `<title>${escapeXml(title)}</title>`,
    `<rect width="${WIDTH}" height="${height}" fill="#ffffff"/>`,
    `<text x="12" y="22" font-size="15" font-weight="600" fill="${INK}">${escapeXml(title)}</text>`,
    `<text x="12" y="40" fill="${MUTED}">${escapeXml(subtitle)}</text>`,
  ];
  const labels: string[] = [];
  rows.forEach((row, i) => {
    const y = TOP + i * ROW_H;
    const rel = row.target > 0 ? row.value / row.target : 0;
    const full = rel * TARGET_AT * PLOT_W;
    const cut = full > PLOT_W;
    const w = Math.max(1, Math.min(full, PLOT_W));
    const color = row.met ? MET : MISSED;
    const mid = y + ROW_H / 2;
    out.push(
      `<text x="${LABEL_W - 10}" y="${mid + 4}" text-anchor="end" fill="${INK}">${escapeXml(row.name)}</text>`,
      `<rect x="${LABEL_W}" y="${mid - BAR_H / 2}" width="${w.toFixed(1)}" height="${BAR_H}" rx="2" fill="${color}"/>`,
    );
    if (cut) {
      const x = LABEL_W + PLOT_W;
      out.push(
        `<path d="M${x - 10} ${mid - BAR_H / 2} l6 ${BAR_H / 2} l-6 ${BAR_H / 2}" stroke="#ffffff" stroke-width="2" fill="none"/>`,
      );
    }
    const label = `${formatValue(row.value)} (${row.op} ${formatValue(row.target)}) ${row.met ? 'met' : 'missed'}`;
    // A white halo keeps the label readable where it crosses the target line.
    labels.push(
      `<text x="${LABEL_W + w + 6}" y="${mid + 4}" fill="${color}" font-weight="600" stroke="#ffffff" stroke-width="4" paint-order="stroke">${escapeXml(label)}</text>`,
    );
  });
  const lineTop = TOP - 6;
  const lineBottom = TOP + rows.length * ROW_H + 4;
  out.push(
    `<line x1="${targetX}" y1="${lineTop}" x2="${targetX}" y2="${lineBottom}" stroke="${INK}" stroke-width="1.5" stroke-dasharray="5 4"/>`,
    ...labels,
    `<text x="${targetX}" y="${lineBottom + 16}" text-anchor="middle" fill="${MUTED}">target</text>`,
    `<text x="${LABEL_W}" y="${lineBottom + 16}" fill="${MUTED}">0</text>`,
    `<text x="${LABEL_W + PLOT_W}" y="${lineBottom + 16}" text-anchor="end" fill="${MUTED}">2× target</text>`,
    '</svg>',
  );
  return `${out.join('\n')}\n`;
}
