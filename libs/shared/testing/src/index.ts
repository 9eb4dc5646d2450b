export { patternSha256 } from './lib/download-pattern';
export * from './lib/stub-upstream';
