// The raw NATS request/reply peer of the invoke benchmark: a responder in its own process.
import { connect } from '@nats-io/transport-node';

// argv: url, user, password (the test server's bench user, allowed bench.> only)
const nc = await connect({ servers: process.argv[2], user: process.argv[3], pass: process.argv[4], noAsyncTraces: true });
const sub = nc.subscribe('bench.echo');
console.log('ready');
for await (const m of sub) m.respond(m.data);
