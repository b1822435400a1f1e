// Preload (node --import) that runs this process on a clock SLUICE_TEST_CLOCK_SKEW_MS ahead
// (negative: behind) of the machine's, the way a device with a badly set clock sees time.
const skew = Number(process.env.SLUICE_TEST_CLOCK_SKEW_MS ?? 0);
const RealDate = Date;
const realNow = RealDate.now.bind(RealDate);

class SkewedDate extends RealDate {
  constructor(...args) {
    if (args.length === 0) super(realNow() + skew);
    else super(...args);
  }

  static now() {
    return realNow() + skew;
  }
}

globalThis.Date = SkewedDate;
