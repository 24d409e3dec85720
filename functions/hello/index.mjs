// hello: greets event.name. Send it JSON: {"name": "Ada"} → {"greeting": "Hello, Ada!"}
export default async function hello(event, context) {
  const name = event?.name;
  if (typeof name !== 'string' || name === '') throw new TypeError('"name" must be a non-empty string');
  context.log.info('greeting', { name });
  return { greeting: `Hello, ${name}!` };
}
