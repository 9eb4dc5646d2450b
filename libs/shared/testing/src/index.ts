export { patternChunk, patternSha256 } from './lib/download-pattern';
export * from './lib/stub-upstream';
export * from './lib/gateway-process';
export * from './lib/http-client';
