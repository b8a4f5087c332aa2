// ia-continu monitoring dashboard. Plain browser JavaScript, no build step, no library.
// Every endpoint may be missing or return nulls: a value we cannot show is "—", never an exception.
"use strict";

(function () {
  const REFRESH_MS = 30000;
  const DASH = "—";

  // The monitoring targets are the model's own: the limits its performance alert judges
  // (the summary's "targets"); a figure the alert does not judge keeps the default target.
  // Beyond the target an orange band is "watch", beyond it is "act": a "lower" figure up to
  // ORANGE times its target, a "higher" one ORANGE below it. good/warn/bad: for "lower"
  // figures good < target <= warn < bad. RMSE has no default: its unit is the target's.
  const BETTER = { mae: "lower", rmse: "lower", r2: "higher", accuracy: "higher", precision: "higher", recall: "higher", f1: "higher", latency: "lower" };
  const DEFAULT_TARGETS = { mae: 3, r2: 0.65, accuracy: 0.8, precision: 0.8, recall: 0.8, f1: 0.8, latency: 150 };
  const ORANGE = { mae: 5 / 3, rmse: 5 / 3, r2: 0.15, accuracy: 0.1, precision: 0.1, recall: 0.1, f1: 0.1, latency: 2 };
  let BANDS = {};

  // Shared with the browser test: how each card formats its number.
  const pct = (v) => (v * 100).toFixed(1) + " %";
  const FORMAT = {
    mae: (v) => v.toFixed(2),
    rmse: (v) => v.toFixed(2),
    r2: (v) => v.toFixed(3),
    accuracy: pct,
    precision: pct,
    recall: pct,
    f1: pct,
    latency: (v) => v.toFixed(1) + " ms",
  };
  // The figure of the monitoring answer each card shows. Which cards a model gets follows
  // its task (data-tasks in the page): errors for a regressor, precision/recall/F1 for a
  // classifier (macro averages for more than two classes).
  const FIGURE = {
    mae: "mae",
    rmse: "rmse",
    r2: "r2",
    accuracy: "accuracy_rate",
    precision: "precision",
    recall: "recall",
    f1: "f1",
    latency: "avg_prediction_time_ms",
  };

  // The service's default model, before the model list is known (or if it cannot be read).
  const DEFAULT_ENDPOINTS = {
    summary: "/api/ml-monitoring/summary",
    daily: "/api/ml-monitoring/daily?days=7",
    anomalies: "/api/ml-monitoring/anomalies",
    flags: "/api/feature-flags/status",
    models: "/models",
    drift: "/api/drift/latest",
    challenger: "/challenger",
    estimates: "/api/ml-monitoring/estimates?hours=24",
  };

  // Every panel reads the chosen model's own routes.
  function endpoints(name) {
    if (!name) return DEFAULT_ENDPOINTS;
    const base = "/models/" + encodeURIComponent(name);
    return {
      summary: base + "/monitoring/summary",
      daily: base + "/monitoring/daily?days=7",
      anomalies: base + "/monitoring/anomalies",
      flags: base + "/rollout/status",
      models: base,
      drift: base + "/drift/latest",
      challenger: base + "/challenger",
      estimates: base + "/monitoring/estimates?hours=24",
    };
  }

  function bandsFor(targets) {
    const out = {};
    for (const [metric, figure] of Object.entries(FIGURE)) {
      const own = targets && isNum(targets[figure]) ? targets[figure] : undefined;
      const good = own !== undefined ? own : DEFAULT_TARGETS[metric];
      if (!isNum(good)) { out[metric] = null; continue; }
      const lower = BETTER[metric] === "lower";
      out[metric] = { better: BETTER[metric], good, warn: lower ? good * ORANGE[metric] : good - ORANGE[metric] };
    }
    return out;
  }

  function targetText(metric) {
    const b = BANDS[metric];
    if (!b) return BETTER[metric] === "lower" ? "lower is better" : "higher is better";
    const f = FORMAT[metric];
    return b.better === "lower"
      ? "target < " + f(b.good) + " · orange " + f(b.good) + "–" + f(b.warn)
      : "target > " + f(b.good) + " · orange " + f(b.warn) + "–" + f(b.good);
  }

  let model = null; // the chosen model's name (null: the default routes)
  let tasks = {}; // model name -> its task: binary, multiclass or regression

  const $ = (id) => document.getElementById(id);
  const isNum = (v) => typeof v === "number" && Number.isFinite(v);
  const pick = (obj, ...keys) => {
    if (!obj || typeof obj !== "object") return undefined;
    for (const k of keys) if (obj[k] !== undefined && obj[k] !== null) return obj[k];
    return undefined;
  };

  function setText(id, value) {
    const node = $(id);
    if (node) node.textContent = value === undefined || value === null || value === "" ? DASH : String(value);
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v;
      else node.setAttribute(k, v);
    }
    for (const c of children) node.append(c === undefined || c === null ? DASH : c);
    return node;
  }

  function fmtNum(v, digits) {
    return isNum(v) ? v.toFixed(digits) : DASH;
  }
  function fmtPct(v) {
    // Rates are fractions (0..1); a percentage setting is already 0..100.
    return isNum(v) ? (v * 100).toFixed(1) + " %" : DASH;
  }
  function fmtInt(v) {
    return isNum(v) ? Math.round(v).toLocaleString("en-US") : DASH;
  }
  function fmtTime(iso) {
    if (!iso) return DASH;
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleString();
  }
  function yesNo(v) {
    return v === true ? "yes" : v === false ? "no" : DASH;
  }

  function status(metric, v) {
    if (!isNum(v)) return "unknown";
    const b = BANDS[metric];
    if (!b) return "info";
    if (b.better === "lower") return v < b.good ? "good" : v < b.warn ? "warn" : "bad";
    return v > b.good ? "good" : v >= b.warn ? "warn" : "bad";
  }

  async function getJSON(url) {
    const r = await fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" });
    if (!r.ok) throw new Error(url + ": HTTP " + r.status);
    return r.json();
  }

  // --- renderers: each takes a possibly missing payload --------------------------------------

  function renderCards(summary) {
    const m24 = (summary && summary.metrics_24h) || {};
    const m7 = (summary && summary.metrics_7d) || {};
    BANDS = bandsFor(summary && summary.targets);
    for (const [metric, figure] of Object.entries(FIGURE)) {
      $("card-" + metric).querySelector(".target").textContent = targetText(metric);
      const day = m24[figure];
      const week = m7[figure];
      const card = $("card-" + metric);
      const value = $("value-" + metric);
      value.textContent = isNum(day) ? FORMAT[metric](day) : DASH;
      value.dataset.value = isNum(day) ? String(day) : "";
      card.dataset.status = status(metric, day);
      setText("value-" + metric + "-7d", isNum(week) ? FORMAT[metric](week) : DASH);
    }
    setText("count-24h", isNum(m24.count) ? fmtInt(m24.count) : DASH);

    const threshold = summary ? summary.anomaly_threshold : undefined;
    if (isNum(threshold)) setText("anomaly-threshold", String(threshold));
    const anomalies = summary ? summary.anomalies_count : undefined;
    const alert = $("anomalies-alert");
    if (isNum(anomalies) && anomalies > 0) {
      setText("anomalies-count", fmtInt(anomalies));
      alert.hidden = false;
    } else {
      alert.hidden = true;
    }
  }

  function renderRollout(flags, summary) {
    const config = (flags && flags.config) || (summary && summary.feature_flags) || {};
    const stats = (flags && flags.stats) || (summary && summary.feature_flags) || {};
    const health = (flags && flags.health) || {};
    setText("rollout-enabled", yesNo(pick(config, "ML_ENABLED", "ml_enabled")));
    const pct = pick(config, "ML_TRAFFIC_PERCENTAGE", "ml_traffic_percentage");
    setText("rollout-percentage", isNum(pct) ? pct.toFixed(0) + " %" : DASH);
    setText("rollout-fallback", yesNo(pick(config, "FALLBACK_ON_ERROR", "fallback_on_error")));
    setText("rollout-success-rate", fmtPct(pick(stats, "ml_success_rate")));
    setText("rollout-usage-rate", fmtPct(pick(stats, "ml_usage_rate")));
    setText("rollout-total", fmtInt(pick(stats, "total_requests")));
    setText("rollout-ml", fmtInt(pick(stats, "ml_requests")));
    const ok = pick(stats, "ml_successes");
    const ko = pick(stats, "ml_failures");
    setText("rollout-ml-outcomes", isNum(ok) || isNum(ko) ? fmtInt(ok) + " / " + fmtInt(ko) : DASH);
    setText("rollout-fallback-requests", fmtInt(pick(stats, "fallback_requests")));

    const badge = $("rollout-health");
    const verdict = health.status;
    badge.textContent = verdict || DASH;
    badge.dataset.status =
      verdict === "healthy" || verdict === "ok" ? "good"
        : verdict === "degraded" || verdict === "warning" ? "warn"
          : verdict ? "bad" : "unknown";
    $("rollout-health-reason").textContent = health.reason || "";
  }

  function renderDrift(drift) {
    const badge = $("drift-status");
    if (!drift || drift.status === "none") {
      badge.textContent = drift ? "no check yet" : DASH;
      badge.dataset.status = "unknown";
      for (const id of ["drift-at", "drift-version", "drift-share", "drift-features", "drift-rows"]) setText(id, null);
      $("drift-scores").tBodies[0].replaceChildren();
      return;
    }
    badge.textContent = drift.dataset_drift ? "drift detected" : "no drift";
    badge.dataset.status = drift.dataset_drift ? "bad" : "good";
    setText("drift-at", fmtTime(drift.created_at));
    setText("drift-version", drift.model_version);
    setText("drift-share", fmtPct(drift.drift_share));
    const feats = Array.isArray(drift.drifted_features) ? drift.drifted_features : [];
    setText("drift-features", feats.length ? feats.join(", ") : "none");
    setText("drift-rows", fmtInt(drift.reference_rows) + " / " + fmtInt(drift.current_rows));
    const rows = Object.entries(drift.feature_scores || {}).map(([name, score]) =>
      el("tr", {}, el("td", {}, name), el("td", {}, fmtNum(score, 4))));
    $("drift-scores").tBodies[0].replaceChildren(...rows);
  }

  function renderModels(models) {
    models = models || {};
    setText("family", models.family);
    setText("champion-short", models.champion_version ? "v" + models.champion_version : null);
    setText("models-name", models.registered_model);
    setText("models-champion", models.champion_version);
    setText("models-served", models.served_version);
    setText("models-previous", models.previous_version);
    const versions = Array.isArray(models.versions) ? models.versions : [];
    const rows = versions.map((v) => {
      const metrics = Object.entries(v.metrics || {})
        .filter(([, val]) => isNum(val))
        .slice(0, 6)
        .map(([k, val]) => k + " " + val.toFixed(3))
        .join(" · ");
      const isChampion = String(v.version) === String(models.champion_version);
      return el("tr", isChampion ? { class: "champion" } : {},
        el("td", {}, String(v.version)),
        el("td", {}, (v.aliases || []).join(", ") || ""),
        el("td", {}, v.run_name || ""),
        el("td", {}, fmtTime(v.created_at)),
        el("td", { class: "metrics" }, metrics || DASH));
    });
    if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: "5", class: "muted" }, "no model registered yet")));
    $("models-versions").tBodies[0].replaceChildren(...rows);
    const history = Array.isArray(models.history) ? models.history : [];
    const items = history.slice(0, 10).map((h) =>
      el("li", {}, el("strong", {}, (h.action || "?") + " v" + (h.version || "?")),
        " ", el("span", { class: "muted" }, fmtTime(h.at)),
        h.reason ? " · " + h.reason : ""));
    if (!items.length) items.push(el("li", { class: "muted" }, "no promotion yet"));
    $("models-history").replaceChildren(...items);
  }

  function renderAnomalies(list) {
    const items = Array.isArray(list) ? list : Array.isArray(list && list.anomalies) ? list.anomalies : [];
    const rows = items.slice(0, 50).map((a) => {
      const predicted = pick(a, "predicted", "prediction", "predicted_delay_minutes");
      const actual = pick(a, "actual", "actual_delay_minutes");
      const error = pick(a, "error", "prediction_error", "abs_error");
      return el("tr", {},
        el("td", {}, fmtTime(pick(a, "created_at", "timestamp", "at"))),
        el("td", {}, pick(a, "request_id", "booking_id") || DASH),
        el("td", {}, isNum(predicted) ? fmtNum(predicted, 2) : DASH),
        el("td", {}, isNum(actual) ? fmtNum(actual, 2) : DASH),
        el("td", {}, isNum(error) ? fmtNum(error, 2) : DASH),
        el("td", {}, pick(a, "model_version") || DASH));
    });
    if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: "6", class: "muted" }, list ? "no anomaly" : DASH)));
    $("anomalies-list").tBodies[0].replaceChildren(...rows);
  }

  // --- the challenger arm: champion and challenger side by side -------------------------------

  // A metric of the live comparison, formatted as its card is (others: 4 significant digits).
  const METRIC_FORMAT = { accuracy: pct, mae: FORMAT.mae, rmse: FORMAT.rmse, r2: FORMAT.r2, precision: pct, recall: pct, f1: pct };
  function fmtMetric(name, v) {
    if (!isNum(v)) return DASH;
    return (METRIC_FORMAT[name] || ((x) => x.toPrecision(4)))(v);
  }
  function fmtP(v) {
    return isNum(v) ? (v < 0.001 ? v.toExponential(1) : v.toFixed(3)) : DASH;
  }
  const VERDICT_STATUS = { advance: "good", hold: "warn", abort: "bad" };

  function shares(arm) {
    if (arm.mode === "shadow") {
      return ["100 %", "shadow: scores " + fmtPct(arm.shadow_rate) + " of the champion's requests"];
    }
    return [(100 - arm.percentage).toFixed(0) + " % of ML traffic", "canary: " + arm.percentage.toFixed(0) + " % of ML traffic"];
  }

  function estimateOf(estimates, version) {
    const versions = (estimates && Array.isArray(estimates.versions)) ? estimates.versions : [];
    const found = versions.find((v) => String(v.model_version) === String(version));
    return found && isNum(found.estimated) ? found.estimated : undefined;
  }

  function renderChallenger(ch, estimates) {
    ch = ch || {};
    const policy = ch.policy || {};
    const steps = Array.isArray(policy.steps) ? policy.steps.map((v) => v + " %").join(" → ") : "";
    setText("challenger-policy", policy.name
      ? policy.name + (policy.name === "direct" ? " (a version that passes the offline gate is champion at once)"
        : " · canary steps " + steps + " · " + policy.min_labelled + " outcomes per arm · alpha " + policy.alpha)
      : null);
    const arm = ch.active;
    const c = ch.comparison;
    $("challenger").dataset.state = arm ? arm.mode : "none";
    $("challenger-live").hidden = !arm;
    const none = $("challenger-none");
    none.hidden = Boolean(arm);
    const last = Array.isArray(ch.recent) && ch.recent.length ? ch.recent[0] : null;
    none.textContent = arm ? "" : "no challenger live" + (last ? " · last: v" + last.version + " " + last.status + " " + fmtTime(last.ended_at) : "");

    // The verdict: what the analysis says now of the live arm, else the last one given.
    const verdict = c ? { verdict: c.verdict, reason: c.reason } : ch.last_verdict;
    const badge = $("challenger-verdict");
    badge.textContent = verdict && verdict.verdict ? verdict.verdict : DASH;
    badge.dataset.status = (verdict && VERDICT_STATUS[verdict.verdict]) || "unknown";
    $("challenger-reason").textContent = verdict && verdict.reason ? verdict.reason : (ch.comparison_error || "");

    if (arm) {
      const [championShare, challengerShare] = shares(arm);
      const figures = { champion: (c && c.champion) || {}, challenger: (c && c.challenger) || {} };
      const versions = { champion: arm.champion_version, challenger: arm.version };
      const metric = c ? c.metric : undefined;
      setText("arm-metric-name", metric ? metric + " (realised)" : "Gate metric");
      setText("arm-estimate-name", estimates && estimates.metric
        ? estimates.metric + " estimated (" + estimates.method + ", 24 h)" : "Estimated (24 h)");
      for (const side of ["champion", "challenger"]) {
        const f = figures[side];
        setText("arm-" + side + "-version", versions[side] ? "v" + versions[side] : null);
        setText("arm-" + side + "-share", side === "champion" ? championShare : challengerShare);
        setText("arm-" + side + "-rows", fmtInt(f.rows));
        setText("arm-" + side + "-labelled", fmtInt(f.labelled));
        const cell = $("arm-" + side + "-metric");
        cell.textContent = fmtMetric(metric, f.metric);
        cell.dataset.value = isNum(f.metric) ? String(f.metric) : "";
        const est = estimateOf(estimates, versions[side]);
        setText("arm-" + side + "-estimated", estimates ? fmtMetric(estimates.metric, est) : DASH);
        setText("arm-" + side + "-error", fmtPct(f.error_rate));
        setText("arm-" + side + "-fallback", fmtPct(f.fallback_share));
        setText("arm-" + side + "-latency", isNum(f.latency_ms) ? f.latency_ms.toFixed(2) + " ms" : DASH);
      }
      // Mark the better realised metric (per the model's direction).
      const a = figures.champion.metric, b = figures.challenger.metric;
      const better = isNum(a) && isNum(b) && a !== b ? ((b > a) === Boolean(c.higher_is_better) ? "challenger" : "champion") : null;
      for (const side of ["champion", "challenger"]) $("arm-" + side + "-metric").dataset.better = side === better ? "yes" : "no";
      setText("challenger-test", c && c.test ? c.test : "not run yet (too few outcomes)");
      setText("challenger-p", fmtP(c && c.p_value));
      setText("challenger-p-not-worse", fmtP(c && c.p_not_worse));
      setText("challenger-p-sequential", fmtP(c && c.p_sequential));
      const effect = c && isNum(c.difference)
        ? (c.difference >= 0 ? "+" : "") + c.difference.toPrecision(3) + " " + c.metric
          + (isNum(c.ci_low) && isNum(c.ci_high) ? " [" + c.ci_low.toPrecision(3) + ", " + c.ci_high.toPrecision(3) + "]" : "")
        : null;
      setText("challenger-effect", effect);
      setText("challenger-window", c ? fmtTime(c.window_start) : null);
    }

    const events = Array.isArray(ch.steps) ? ch.steps : [];
    const items = events.slice(0, 12).map((e) => {
      const m = e.metrics || {};
      const where = m.mode === "shadow" ? "shadow" : isNum(m.percentage) ? m.percentage + " %" : "";
      const p = isNum(m.p_value) ? " · p " + fmtP(m.p_value) : "";
      return el("li", { "data-event": e.event },
        el("strong", {}, e.event.replace("challenger_", "") + " v" + (e.version || "?")),
        " " + where + p + " ", el("span", { class: "muted" }, fmtTime(e.at)),
        e.reason ? " · " + e.reason : "");
    });
    if (!items.length) items.push(el("li", { class: "muted" }, "no challenger yet"));
    $("challenger-steps").replaceChildren(...items);
  }

  // --- daily trend: a tiny SVG chart (no library needed for three series of 7 points) ------

  const SVG_NS = "http://www.w3.org/2000/svg";
  function svgEl(tag, attrs, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function drawChart(svg, labels, values, { kind, format, band }) {
    const W = 300, H = 140, L = 36, R = 16, T = 10, B = 22;
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    svg.replaceChildren();
    const known = values.filter(isNum);
    if (!known.length) {
      svg.append(svgEl("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "empty" }, "no data"));
      return;
    }
    let lo = kind === "bar" ? 0 : Math.min(...known);
    let hi = Math.max(...known);
    if (band !== undefined) { lo = Math.min(lo, band); hi = Math.max(hi, band); }
    if (hi === lo) { hi += 1; lo = Math.max(0, lo - 1); }
    const n = labels.length;
    const x = (i) => L + (n === 1 ? (W - L - R) / 2 : (i * (W - L - R)) / (n - 1));
    const y = (v) => T + (H - T - B) * (1 - (v - lo) / (hi - lo));
    svg.append(svgEl("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, class: "axis" }));
    svg.append(svgEl("text", { x: L - 4, y: y(hi) + 4, "text-anchor": "end", class: "tick" }, format(hi)));
    svg.append(svgEl("text", { x: L - 4, y: y(lo) + 4, "text-anchor": "end", class: "tick" }, format(lo)));
    if (band !== undefined) {
      svg.append(svgEl("line", { x1: L, y1: y(band), x2: W - R, y2: y(band), class: "target" }));
    }
    labels.forEach((lab, i) => {
      if (n <= 7 || i % Math.ceil(n / 7) === 0) {
        // The last label ends at its point so it never runs past the right edge.
        const anchor = i === n - 1 && n > 1 ? "end" : "middle";
        svg.append(svgEl("text", { x: x(i) + (anchor === "end" ? 6 : 0), y: H - 6, "text-anchor": anchor, class: "tick" }, lab));
      }
    });
    if (kind === "bar") {
      const bw = Math.max(4, ((W - L - R) / Math.max(n, 1)) * 0.5);
      values.forEach((v, i) => {
        if (!isNum(v)) return;
        const rect = svgEl("rect", { x: x(i) - bw / 2, y: y(v), width: bw, height: H - B - y(v), class: "bar" });
        rect.append(svgEl("title", {}, labels[i] + ": " + format(v)));
        svg.append(rect);
      });
      return;
    }
    const pts = values.map((v, i) => (isNum(v) ? [x(i), y(v)] : null)).filter(Boolean);
    svg.append(svgEl("polyline", { points: pts.map((p) => p.join(",")).join(" "), class: "line" }));
    values.forEach((v, i) => {
      if (!isNum(v)) return;
      const dot = svgEl("circle", { cx: x(i), cy: y(v), r: 3, class: "point" });
      dot.append(svgEl("title", {}, labels[i] + ": " + format(v)));
      svg.append(dot);
    });
  }

  function renderDaily(daily) {
    const days = (Array.isArray(daily) ? daily : Array.isArray(daily && daily.days) ? daily.days : []).slice();
    days.sort((a, b) => String(pick(a, "day", "date") || "").localeCompare(String(pick(b, "day", "date") || "")));
    const labels = days.map((d) => String(pick(d, "day", "date") || "").slice(5, 10) || "?");
    drawChart($("chart-count"), labels, days.map((d) => d.count), { kind: "bar", format: (v) => v.toFixed(0) });
    drawChart($("chart-mae"), labels, days.map((d) => d.mae), { kind: "line", format: (v) => v.toFixed(2), band: BANDS.mae.good });
    drawChart($("chart-f1"), labels, days.map((d) => d.f1),
      { kind: "line", format: (v) => (v * 100).toFixed(0) + "%", band: BANDS.f1.good });
    drawChart($("chart-accuracy"), labels, days.map((d) => d.accuracy_rate),
      { kind: "line", format: (v) => (v * 100).toFixed(0) + "%", band: BANDS.accuracy.good });
  }

  // --- refresh loop --------------------------------------------------------------------------

  // --- the model picker ---------------------------------------------------------------------

  // Show what the task has (cards, charts), hide the rest; an unknown task shows everything.
  function applyTask() {
    const task = model ? tasks[model] : undefined;
    setText("task", task);
    for (const node of document.querySelectorAll("[data-tasks]")) {
      node.hidden = Boolean(task) && !node.dataset.tasks.split(" ").includes(task);
    }
    const urls = endpoints(model);
    const links = {
      summary: urls.summary, daily: urls.daily, flags: urls.flags, models: urls.models, drift: urls.drift,
      challenger: urls.challenger, estimates: urls.estimates,
    };
    for (const [key, url] of Object.entries(links)) $("link-" + key).setAttribute("href", url);
    $("anomalies-json").setAttribute("href", urls.anomalies);
  }

  // The declared models; the first choice is ?model= when it names one, else the service's
  // default model. Without the list the page keeps the default routes.
  async function loadModels() {
    const picker = $("model-picker");
    let declared = [];
    try {
      declared = await getJSON("/models/declared");
    } catch (_) {
      picker.disabled = true;
      return;
    }
    tasks = Object.fromEntries(declared.map((d) => [d.name, d.task]));
    picker.replaceChildren(...declared.map((d) => el("option", { value: d.name }, d.name + " (" + d.task + ")")));
    const asked = new URLSearchParams(window.location.search).get("model");
    const served = declared.find((d) => d.served);
    model = asked && asked in tasks ? asked : served ? served.name : declared.length ? declared[0].name : null;
    if (model) picker.value = model;
  }

  function choose(name) {
    model = name;
    const url = new URL(window.location.href);
    url.searchParams.set("model", name);
    window.history.replaceState(null, "", url);
    applyTask();
    refresh();
  }

  // --- refresh loop --------------------------------------------------------------------------

  let inFlight = null;
  let again = false;
  let refreshCount = 0;

  async function refreshOnce() {
    const shown = model;
    const urls = endpoints(shown);
    // The estimates score a day of predictions: asked for only while a challenger is live.
    const names = Object.keys(urls).filter((n) => n !== "estimates");
    const results = await Promise.allSettled(names.map((n) => getJSON(urls[n])));
    const data = {};
    const missing = [];
    results.forEach((r, i) => {
      if (r.status === "fulfilled") data[names[i]] = r.value;
      else missing.push(urls[names[i]].split("?")[0]);
    });
    if (data.challenger && data.challenger.active) {
      try { data.estimates = await getJSON(urls.estimates); } catch (_) { missing.push(urls.estimates.split("?")[0]); }
    }
    const steps = [
      () => renderCards(data.summary),
      () => renderRollout(data.flags, data.summary),
      () => renderDrift(data.drift),
      () => renderModels(data.models),
      () => renderAnomalies(data.anomalies),
      () => renderDaily(data.daily),
      () => renderChallenger(data.challenger, data.estimates),
    ];
    for (const step of steps) {
      try { step(); } catch (err) { missing.push("render: " + err.message); }
    }
    const notice = $("unavailable");
    notice.hidden = missing.length === 0;
    notice.textContent = missing.length ? "Unavailable: " + missing.join(", ") : "";
    const now = new Date();
    $("last-updated").textContent = now.toLocaleTimeString();
    $("last-updated").setAttribute("datetime", now.toISOString());
    refreshCount += 1;
    document.body.dataset.model = shown || "";
    document.body.dataset.refreshCount = String(refreshCount);
  }

  // One refresh at a time; asked again meanwhile (another model chosen), it runs once more
  // when the current one ends, so the page never stays on the previous model's figures.
  async function refresh() {
    if (inFlight) {
      again = true;
      return inFlight;
    }
    const button = $("refresh-btn");
    button.disabled = true;
    inFlight = (async () => {
      do {
        again = false;
        await refreshOnce();
      } while (again);
    })();
    try {
      await inFlight;
    } finally {
      inFlight = null;
      button.disabled = false;
    }
  }

  let timer = null;
  function schedule() {
    if (timer) clearInterval(timer);
    timer = $("auto-refresh").checked ? setInterval(refresh, REFRESH_MS) : null;
  }

  document.addEventListener("DOMContentLoaded", async () => {
    const toggle = $("auto-refresh");
    try {
      toggle.checked = localStorage.getItem("ia-continu.autoRefresh") !== "off";
    } catch (_) { /* storage may be disabled: keep the default */ }
    toggle.addEventListener("change", () => {
      try { localStorage.setItem("ia-continu.autoRefresh", toggle.checked ? "on" : "off"); } catch (_) { /* ignore */ }
      schedule();
    });
    $("refresh-btn").addEventListener("click", () => { refresh(); });
    $("model-picker").addEventListener("change", (event) => { choose(event.target.value); });
    await loadModels();
    applyTask();
    schedule();
    refresh();
  });
})();
