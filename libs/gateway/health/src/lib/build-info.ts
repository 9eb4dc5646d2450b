/** Injection token of the running build's name and version, shown by `/info` and `/health`. */
export const GATEWAY_BUILD_INFO = Symbol('GATEWAY_BUILD_INFO');

export interface GatewayBuildInfo {
  readonly name: string;
  readonly version: string;
}
