#!/usr/bin/env node
// The AWS SDK warns on every S3 client that its releases after January 2027 need Node 22: advice
// for whoever bumps the SDK, not for someone running sluice. Set before the SDK is loaded.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
// A reader that stops early (`sluice doctor | head`) closes the pipe: end quietly, as cat does,
// with the shell's code for SIGPIPE, rather than crash on an unhandled EPIPE.
process.stdout.on('error', (e) => {
  if (e.code === 'EPIPE') process.exit(141);
  throw e;
});
const { main } = await import('../dist/main.js');

process.exitCode = await main(process.argv.slice(2));
