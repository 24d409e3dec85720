/** What other packages (the test kit) use to start services the way `skiff up` does. */
export { serviceArgs, type ServiceName } from './paths.js';
export { natsServerArgs, natsServerConfig, natsCredentials, prepareNatsServer, type ExtraNatsUser, type NatsCredentials, type NatsUser, type PreparedNatsServer } from './nats-server.js';
