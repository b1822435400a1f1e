// Filled in by the end-to-end (#3) and CDN (#4) issues; the package exists so the workspace layout is fixed.
export {};
