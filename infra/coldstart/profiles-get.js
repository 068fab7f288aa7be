// The Node.js 20 twin of profiles-get, for coldstart-bench: GET /v1/profiles/{username}
// as a Node function would serve it (AWS SDK v3 DynamoDB client made at init, the runtime
// loop of Lambda's Runtime API), reading the same table the same way: the handle item,
// then one query of the profile's partition. `npm ci` here installs the SDK.
'use strict';
const http = require('node:http');
const { DynamoDBClient, GetItemCommand, QueryCommand } = require('@aws-sdk/client-dynamodb');

const api = process.env.AWS_LAMBDA_RUNTIME_API;
const table = process.env.PROFILES_TABLE;
// Honours AWS_ENDPOINT_URL (moto locally), as the Rust functions do.
const dynamo = new DynamoDBClient({ endpoint: process.env.AWS_ENDPOINT_URL || undefined });

function call(method, path, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(`http://${api}/2018-06-01/runtime${path}`, { method }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    if (body !== undefined) req.setHeader('content-type', 'application/json');
    req.end(body);
  });
}

function answer(status, body) {
  return { statusCode: status, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
}

async function handle(event) {
  const username = (event.pathParameters || {}).username;
  if (!username) return answer(400, { code: 'invalid', field: 'username' });
  const handle = await dynamo.send(new GetItemCommand({
    TableName: table,
    Key: { pk: { S: `HANDLE#${username}` }, sk: { S: 'HANDLE' } },
  }));
  const userId = handle.Item && handle.Item.user_id && handle.Item.user_id.S;
  if (!userId) return answer(404, { code: 'not_found' });
  const items = await dynamo.send(new QueryCommand({
    TableName: table,
    KeyConditionExpression: 'pk = :pk',
    ExpressionAttributeValues: { ':pk': { S: `PROFILE#${userId}` } },
  }));
  const profile = (items.Items || []).find((i) => i.sk.S === 'PROFILE');
  if (!profile) return answer(404, { code: 'not_found' });
  return answer(200, { id: userId, username, display_name: profile.display_name && profile.display_name.S });
}

(async () => {
  for (;;) {
    const next = await call('GET', '/invocation/next');
    const id = next.headers['lambda-runtime-aws-request-id'];
    let out;
    try {
      out = await handle(JSON.parse(next.body));
    } catch (e) {
      await call('POST', `/invocation/${id}/error`, JSON.stringify({ errorType: e.name, errorMessage: e.message }));
      continue;
    }
    await call('POST', `/invocation/${id}/response`, JSON.stringify(out));
  }
})();
