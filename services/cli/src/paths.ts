import { fileURLToPath } from 'node:url';

/** The checkout this CLI runs from (services/cli/dist → three levels up). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export function serviceMain(service: 'gateway' | 'scheduler' | 'worker'): string {
  return fileURLToPath(new URL(`../../${service}/dist/main.js`, import.meta.url));
}
