'use strict';
// On-disk S3-compatible server for the local dev stack (see libs/devstack/README.md).
//
// Usage: node server.js --directory DIR [--address 127.0.0.1] [--port 4568]
//                       [--bucket NAME]... [--silent]
//
// Objects are kept as files under DIR, so they survive a restart. The buckets named
// with --bucket are created before the server accepts connections (an existing bucket
// and its objects are kept). Once listening, one line is printed to stdout:
//   S3RVER_READY http://ADDRESS:PORT
// SIGTERM / SIGINT close the listener and exit 0.
//
// On top of s3rver: AbortMultipartUpload (s3rver itself answers it with 405), and
// listings of more than 1000 keys under OpenSSL 3 (below).

const fs = require('fs');
const path = require('path');

// s3rver makes its ListObjectsV2 continuation tokens with single DES, which OpenSSL 3
// only has in its legacy provider: every listing of more than 1000 keys was a 500
// (ERR_OSSL_EVP_UNSUPPORTED). The token is opaque to clients and s3rver decodes its
// own, so triple DES (same 8-byte block, in the default provider) with the 8-byte key
// repeated does the same job.
const crypto = require('crypto');
for (const name of ['createCipheriv', 'createDecipheriv']) {
  const original = crypto[name];
  crypto[name] = function withoutSingleDes(algorithm, key, iv, options) {
    if (algorithm === 'des' && key.length === 8) {
      return original.call(crypto, 'des-ede3-cbc', Buffer.concat([key, key, key]), iv, options);
    }
    return original.call(crypto, algorithm, key, iv, options);
  };
}

const S3rver = require('s3rver');

// s3rver's winston console logger always colorizes (FORCE_COLOR=0 is not honoured by
// @colors/colors, and logform bundles its own copy); the output goes to a log file, so
// switch the escape codes off in every copy that s3rver's logger can reach.
for (const from of ['logform', 'winston', 's3rver']) {
  try {
    const base = path.dirname(require.resolve(from));
    require(require.resolve('@colors/colors/safe', { paths: [base] })).disable();
  } catch (_err) {
    // A different node_modules layout: colored logs are harmless.
  }
}

function parseArgs(argv) {
  const opts = { address: '127.0.0.1', port: 4568, directory: '', buckets: [], silent: false };
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`missing value for ${arg}`);
      i += 1;
      return argv[i];
    };
    switch (arg) {
      case '--address': opts.address = value(); break;
      case '--port': opts.port = Number.parseInt(value(), 10); break;
      case '--directory': opts.directory = value(); break;
      case '--bucket': opts.buckets.push(value()); break;
      case '--silent': opts.silent = true; break;
      default: throw new Error(`unknown argument: ${arg}`);
    }
  }
  if (!opts.directory) throw new Error('--directory is required');
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) {
    throw new Error('--port must be an integer in 0..65535');
  }
  return opts;
}

function xmlError(ctx, status, code, message) {
  ctx.status = status;
  ctx.type = 'application/xml';
  ctx.body =
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<Error><Code>${code}</Code><Message>${message}</Message></Error>`;
}

function abortMultipartUpload(server) {
  return async (ctx, next) => {
    const uploadId = ctx.query.uploadId;
    const match = /^\/([^/]+)\/(.+)$/.exec(ctx.path);
    if (ctx.method !== 'DELETE' || uploadId === undefined || !match) {
      return next();
    }
    if (!/^[0-9a-f]+$/.test(uploadId)) {
      return xmlError(ctx, 404, 'NoSuchUpload', 'The specified upload does not exist.');
    }
    const bucket = decodeURIComponent(match[1]);
    const uploads = server.store.getResourcePath(bucket, undefined, 'uploads');
    const uploadDir = path.join(uploads, uploadId);
    if (!fs.existsSync(uploadDir)) {
      return xmlError(ctx, 404, 'NoSuchUpload', 'The specified upload does not exist.');
    }
    await fs.promises.rm(uploadDir, { recursive: true, force: true });
    server.logger.info('Aborted multipart upload %s in bucket "%s"', uploadId, bucket);
    ctx.status = 204;
    return undefined;
  };
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const directory = path.resolve(opts.directory);
  fs.mkdirSync(directory, { recursive: true });

  const server = new S3rver({
    address: opts.address,
    port: opts.port,
    directory,
    silent: opts.silent,
    // Path-style requests only: the endpoint is an IP address anyway.
    vhostBuckets: false,
    resetOnClose: false,
    configureBuckets: opts.buckets.map((name) => ({ name })),
  });

  // s3rver 3.7.1 answers AbortMultipartUpload (DELETE /bucket/key?uploadId=ID) with 405;
  // clients abort on failure paths, so handle it here: drop the stored parts.
  server.middleware.unshift(abortMultipartUpload(server));

  const { address, port } = await server.run();
  process.stdout.write(`S3RVER_READY http://${address}:${port}\n`);

  let closing = false;
  const shutdown = (signal) => {
    if (closing) return;
    closing = true;
    process.stdout.write(`received ${signal}, closing\n`);
    server.close().then(
      () => process.exit(0),
      () => process.exit(0),
    );
    // Keep-alive connections can hold close() open; do not wait for them forever.
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((err) => {
  process.stderr.write(`s3 server failed to start: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
