/** What other packages (the test kit) use to start services the way `skiff up` does. */
export { serviceArgs, type ServiceName } from './paths.js';
