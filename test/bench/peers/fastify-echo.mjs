// The peer for the invoke benchmark: a bare Fastify server that echoes the body, nothing else.
import Fastify from 'fastify';

const app = Fastify({ logger: false });
app.removeAllContentTypeParsers();
app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
app.post('/echo', async (req, reply) => reply.type('application/octet-stream').send(req.body));
const address = await app.listen({ host: '127.0.0.1', port: Number(process.argv[2] ?? 0) });
console.log(address);
