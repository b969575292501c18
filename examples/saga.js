// Saga: book a trip step by step; when a step fails, undo the completed steps in reverse order.
// Run: DATABASE_URL=postgres://... node examples/saga.js
const { PostgresProvider, Client, Runtime } = require('durox');

async function main(provider) {
  const client = new Client(provider);
  const runtime = new Runtime(provider, { logLevel: 'warn' });

  runtime.registerActivity('BookFlight', async (ctx, trip) => `flight-${trip.id}`);
  runtime.registerActivity('BookHotel', async (ctx, trip) => `hotel-${trip.id}`);
  runtime.registerActivity('BookCar', async (ctx, trip) => {
    if (trip.carAvailable === false) throw new Error('no cars left');
    return `car-${trip.id}`;
  });
  runtime.registerActivity('CancelFlight', async (ctx, booking) => `cancelled ${booking}`);
  runtime.registerActivity('CancelHotel', async (ctx, booking) => `cancelled ${booking}`);

  runtime.registerOrchestration('BookTrip', function* (ctx, trip) {
    const compensations = [];
    try {
      const flight = yield ctx.scheduleActivity('BookFlight', trip);
      compensations.push(['CancelFlight', flight]);
      const hotel = yield ctx.scheduleActivity('BookHotel', trip);
      compensations.push(['CancelHotel', hotel]);
      const car = yield ctx.scheduleActivity('BookCar', trip);
      return { status: 'booked', bookings: [flight, hotel, car] };
    } catch (error) {
      const undone = [];
      for (const [activity, booking] of compensations.reverse()) {
        undone.push(yield ctx.scheduleActivity(activity, booking));
      }
      return { status: 'compensated', reason: error.message, undone };
    }
  });

  await runtime.start();
  try {
    const stamp = Date.now();
    await client.startOrchestration(`trip-${stamp}-ok`, 'BookTrip', { id: 1 });
    await client.startOrchestration(`trip-${stamp}-ko`, 'BookTrip', { id: 2, carAvailable: false });
    const booked = await client.waitForOrchestration(`trip-${stamp}-ok`, 10000);
    const compensated = await client.waitForOrchestration(`trip-${stamp}-ko`, 10000);
    return { booked: booked.output, compensated: compensated.output };
  } finally {
    await runtime.shutdown(100);
  }
}

module.exports = { main };

if (require.main === module) {
  (async () => {
    const url = process.env.DATABASE_URL || 'postgres://root@127.0.0.1:5432/test';
    const provider = await PostgresProvider.connectWithSchema(url, 'examples');
    console.log(JSON.stringify(await main(provider), null, 2));
    await provider.close();
  })().catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
