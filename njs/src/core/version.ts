/** The gateway's version, as in package.json (a unit test keeps them equal). */
export const GATEWAY_NAME = 'njs-ai-gateway';
export const GATEWAY_VERSION = '0.1.0';
