import { StreamConsumer, StreamProducer, type StreamMessage, type StreamTransaction } from '@x/streams';
import type { Example } from './demo';

// The inventory tracker of atomic-redis-streams: every sale lowers the stock; at 10 or below a
// restock alert is published. State, position and alert commit together or not at all.

type Inventory = { stock: number };
const RESTOCK_THRESHOLD = 10;

function track(message: StreamMessage, tx: StreamTransaction<Inventory>): void {
  const quantity = Number(message.fields.quantity);
  if (!Number.isInteger(quantity)) throw new Error(`bad quantity ${JSON.stringify(message.fields.quantity)}`);
  tx.state.stock -= quantity;
  if (tx.state.stock <= RESTOCK_THRESHOLD) {
    tx.publish('restock-alerts', { sku: message.fields.sku!, stock: String(tx.state.stock) });
  }
}

const demo: Example = async (client) => {
  const prefix = `demo-streams-${Date.now()}`;
  const producer = new StreamProducer(client, { prefix });
  const tracker = (name: string) =>
    new StreamConsumer<Inventory>(client, {
      prefix,
      stream: 'sales',
      group: 'inventory-tracker',
      initialState: { stock: 30 },
      maxDeliveries: 3,
      retryDelayMs: 20,
      blockMs: 500,
      handler: (message, tx) => {
        console.log(`  [${name}] sale ${message.fields.sku} x${message.fields.quantity} (delivery ${message.deliveries})`);
        track(message, tx);
      },
      onError: (error, message) => {
        if (message) console.log(`  [${name}] sale ${message.id} failed: ${(error as Error).message}`);
      },
    });
  const waitFor = async (check: () => boolean) => {
    const deadline = Date.now() + 5_000;
    while (!check() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  };

  console.log('sales published before the tracker ever ran are processed too (a new group starts at the beginning)');
  for (const quantity of ['5', '7']) await producer.publish('sales', { sku: 'A1', quantity });

  const first = tracker('first');
  const second = tracker('second');
  await first.start();
  await second.start();
  console.log(`two instances of one group: first is ${first.status}, second is ${second.status}`);
  await waitFor(() => first.state?.stock === 18);
  console.log(`stock after two sales: ${first.state?.stock}`);

  console.log('a sale with a broken quantity is retried, then parked in the dead-letter stream:');
  await producer.publish('sales', { sku: 'B2', quantity: 'lots' });
  await producer.publish('sales', { sku: 'A1', quantity: '9' });
  await waitFor(() => first.state?.stock === 9);

  console.log('the first instance stops; the standby takes over at once, with the committed state:');
  await first.stop();
  await waitFor(() => second.status === 'active');
  console.log(`second is ${second.status}, stock ${second.state?.stock} (nothing reprocessed)`);
  await producer.publish('sales', { sku: 'A1', quantity: '4' });
  await waitFor(() => second.state?.stock === 5);
  await second.stop();

  const alerts = (await client.xRange(`${prefix}:streams:{default}:s:restock-alerts`, '-', '+')) as Array<{ message: Record<string, string> }>;
  console.log(`restock alerts: ${alerts.map((a) => `${a.message.sku}@${a.message.stock}`).join(', ')}`);
  const dead = (await client.xRange(`${prefix}:streams:{default}:s:sales:dead`, '-', '+')) as Array<{ message: Record<string, string> }>;
  for (const d of dead) console.log(`dead letter: ${d.message.fields} after ${d.message.deliveries} deliveries: ${d.message.error}`);

  await client.del([
    `${prefix}:streams:{default}:s:sales`,
    `${prefix}:streams:{default}:s:sales:dead`,
    `${prefix}:streams:{default}:s:restock-alerts`,
    `${prefix}:streams:{default}:g:sales:inventory-tracker`,
  ]);
};
export default demo;
