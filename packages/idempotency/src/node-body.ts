import type { IncomingMessage } from 'node:http';

/** What a request's body turned out to be when the middleware had to read it itself. */
export type RawBody = { bytes: Buffer | undefined } | { tooLarge: true };

/**
 * Reads the body of a node:http request, up to `maxBytes`, and puts it back on the stream: the
 * bytes are unshifted before the stream emits `end`, so a body parser after the middleware
 * (express.json(), koa-bodyparser, `for await (const chunk of req)`) reads it as if untouched.
 * A request without a body (no Content-Length, no Transfer-Encoding, or Content-Length 0) is not
 * touched. Beyond `maxBytes` (declared, or as it arrives) the reading stops: `{ tooLarge: true }`.
 */
export function readNodeBody(req: IncomingMessage & { rawBody?: unknown }, maxBytes: number): Promise<RawBody> {
  // A parser before us that kept the raw bytes (a common convention) saves reading.
  if (Buffer.isBuffer(req.rawBody)) return Promise.resolve({ bytes: req.rawBody });
  if (typeof req.rawBody === 'string') return Promise.resolve({ bytes: Buffer.from(req.rawBody) });
  const length = req.headers['content-length'];
  const chunked = req.headers['transfer-encoding'] !== undefined;
  if (!chunked && (length === undefined || Number(length) === 0)) return Promise.resolve({ bytes: undefined });
  if (length !== undefined && Number(length) > maxBytes) return Promise.resolve({ tooLarge: true });
  if (req.readableEnded) {
    return Promise.reject(
      new Error('idempotency: the request body was read before the middleware and req.body is not set; run the middleware before the body parser, or pass a fingerprint option'),
    );
  }
  return new Promise<RawBody>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = (): void => {
      req.removeListener('readable', onReadable);
      req.removeListener('error', onError);
      req.removeListener('aborted', onAborted);
      req.removeListener('end', onEnd);
    };
    // Resolving one tick later lets the stream notice that our 'readable' listener is gone
    // (Readable does so on the next tick), so a 'data' listener added after us makes it flow.
    const finish = (value: RawBody): void => {
      cleanup();
      process.nextTick(resolve, value);
    };
    const onReadable = (): void => {
      // Only read what is buffered: a read() on an empty ended stream would schedule 'end'.
      while (req.readableLength > 0) {
        const chunk = req.read() as Buffer | string | null;
        if (chunk === null) break;
        const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
        size += buffer.length;
        if (size > maxBytes) return finish({ tooLarge: true });
        chunks.push(buffer);
      }
      // `complete` is set before the end of the body is pushed: everything is buffered now.
      if (req.complete && req.readableLength === 0) {
        const bytes = Buffer.concat(chunks);
        if (bytes.length > 0) req.unshift(bytes);
        finish({ bytes: bytes.length > 0 ? bytes : undefined });
      }
    };
    const onEnd = (): void => {
      // A stream that ended before we could put the body back: keep it where parsers look.
      const bytes = Buffer.concat(chunks);
      req.rawBody = bytes;
      finish({ bytes: bytes.length > 0 ? bytes : undefined });
    };
    const onError = (error: unknown): void => {
      cleanup();
      reject(error);
    };
    const onAborted = (): void => onError(new Error('idempotency: the client aborted the request body'));
    req.on('readable', onReadable);
    req.on('error', onError);
    req.on('aborted', onAborted);
    req.on('end', onEnd);
  });
}
