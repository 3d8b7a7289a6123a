// Shared by the k6 scripts of this folder: handleSummary prints one line
// the Go runner parses (loadtest/runner), plus k6's usual text summary on
// stderr:
//   k6-summary: {"requests":...,"p99_ms":...,"thresholds_ok":true,...}
// `scenario` picks the tagged sub-metrics of one scenario (their
// thresholds must exist for k6 to compute them); empty for the totals.

function val(data, name, scenario, stat) {
  const key = scenario ? `${name}{scenario:${scenario}}` : name;
  const m = data.metrics[key];
  return m && m.values[stat] !== undefined ? m.values[stat] : null;
}

export function summarize(data, scenario) {
  let ok = true;
  for (const name in data.metrics) {
    const t = data.metrics[name].thresholds;
    for (const k in t || {}) {
      if (!t[k].ok) ok = false;
    }
  }
  const out = {
    requests: val(data, 'http_reqs', scenario, 'count'),
    rps: val(data, 'http_reqs', scenario, 'rate'),
    p50_ms: val(data, 'http_req_duration', scenario, 'med'),
    p99_ms: val(data, 'http_req_duration', scenario, 'p(99)'),
    max_ms: val(data, 'http_req_duration', scenario, 'max'),
    failed: val(data, 'http_req_failed', scenario, 'passes'),
    failed_rate: val(data, 'http_req_failed', scenario, 'rate'),
    dropped_iterations: val(data, 'dropped_iterations', '', 'count') || 0,
    admin_writes: scenario ? val(data, 'http_reqs', 'churn', 'count') : null,
    admin_failed: scenario ? val(data, 'http_req_failed', 'churn', 'passes') : null,
    thresholds_ok: ok,
  };
  return 'k6-summary: ' + JSON.stringify(out) + '\n';
}
