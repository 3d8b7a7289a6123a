// Constant arrival rate (an open model: requests keep coming when the
// gateway slows down) with thresholds on p99 latency and errors.
//   k6 run -e TARGET=http://127.0.0.1:9080/hello -e RATE=2000 -e DURATION=20s -e P99_MS=20 loadtest/k6/arrival.js
// k6 exits 99 when a threshold fails.
import http from 'k6/http';
import { summarize } from './summary.js';

const TARGET = __ENV.TARGET || 'http://127.0.0.1:9080/hello';
const RATE = parseInt(__ENV.RATE || '1000', 10);
const DURATION = __ENV.DURATION || '20s';
const P99_MS = parseFloat(__ENV.P99_MS || '20');

export const options = {
  discardResponseBodies: true,
  summaryTrendStats: ['avg', 'med', 'p(90)', 'p(99)', 'max'],
  scenarios: {
    traffic: {
      executor: 'constant-arrival-rate',
      rate: RATE,
      timeUnit: '1s',
      duration: DURATION,
      preAllocatedVUs: 64,
      maxVUs: 512,
    },
  },
  thresholds: {
    http_req_failed: ['rate==0'],
    http_req_duration: [`p(99)<${P99_MS}`],
    // Iterations k6 could not start in time: the rate was not offered.
    dropped_iterations: ['count==0'],
  },
};

export default function () {
  http.get(TARGET);
}

export function handleSummary(data) {
  return { stdout: summarize(data, '') };
}
