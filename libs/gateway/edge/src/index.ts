export * from './lib/request-id';
