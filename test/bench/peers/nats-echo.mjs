// The raw NATS request/reply peer of the invoke benchmark: a responder in its own process.
import { connect } from '@nats-io/transport-node';

const nc = await connect({ servers: process.argv[2], noAsyncTraces: true });
const sub = nc.subscribe('bench.echo');
console.log('ready');
for await (const m of sub) m.respond(m.data);
