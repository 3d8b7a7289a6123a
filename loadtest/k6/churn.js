// Configuration churn through the Admin API during load: traffic at a
// constant arrival rate on TARGET while WRITES_PER_S PUTs per second
// rewrite CHURN_ROUTES routes (each write changes the route: its uri and
// its upstream's weights alternate). Thresholds: no failed proxied
// request, p99 under P99_MS, every admin write answered 2xx.
//   k6 run -e TARGET=http://127.0.0.1:9080/hello -e ADMIN=http://127.0.0.1:9180 \
//          -e NODES=127.0.0.1:1980,127.0.0.1:1981 loadtest/k6/churn.js
import http from 'k6/http';
import exec from 'k6/execution';
import { summarize } from './summary.js';

const TARGET = __ENV.TARGET || 'http://127.0.0.1:9080/hello';
const ADMIN = __ENV.ADMIN || 'http://127.0.0.1:9180';
const NODES = (__ENV.NODES || '127.0.0.1:1980,127.0.0.1:1981').split(',');
const RATE = parseInt(__ENV.RATE || '1000', 10);
const WRITES = parseInt(__ENV.WRITES_PER_S || '100', 10);
const ROUTES = parseInt(__ENV.CHURN_ROUTES || '100', 10);
const DURATION = __ENV.DURATION || '20s';
const P99_MS = parseFloat(__ENV.P99_MS || '20');

export const options = {
  discardResponseBodies: true,
  summaryTrendStats: ['avg', 'med', 'p(90)', 'p(99)', 'max'],
  scenarios: {
    traffic: {
      executor: 'constant-arrival-rate', exec: 'traffic',
      rate: RATE, timeUnit: '1s', duration: DURATION,
      preAllocatedVUs: 64, maxVUs: 512,
    },
    churn: {
      executor: 'constant-arrival-rate', exec: 'churn',
      rate: WRITES, timeUnit: '1s', duration: DURATION,
      preAllocatedVUs: 16, maxVUs: 128,
    },
  },
  thresholds: {
    'http_req_failed{scenario:traffic}': ['rate==0'],
    'http_req_duration{scenario:traffic}': [`p(99)<${P99_MS}`],
    'http_reqs{scenario:traffic}': ['count>0'],
    'http_req_failed{scenario:churn}': ['rate==0'],
    'http_reqs{scenario:churn}': ['count>0'],
    dropped_iterations: ['count==0'],
  },
};

export function traffic() {
  http.get(TARGET);
}

export function churn() {
  const n = exec.scenario.iterationInTest;
  const id = n % ROUTES;
  const flip = Math.floor(n / ROUTES) % 2;
  const nodes = {};
  NODES.forEach((a, i) => { nodes[a] = 1 + ((i + flip) % 2); });
  const body = JSON.stringify({ uri: `/churn/${id}/v${flip}`, upstream: { type: 'roundrobin', nodes: nodes } });
  http.put(`${ADMIN}/apisix/admin/routes/churn-${id}`, body, { headers: { 'Content-Type': 'application/json' } });
}

export function handleSummary(data) {
  return { stdout: summarize(data, 'traffic') };
}
