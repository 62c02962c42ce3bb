// Checks the LogQL of deploy/alerting/ with Grafana's own parser (@grafana/lezer-logql),
// and evaluates it, as Loki would at one instant, over journal entries exported with
// `journalctl -o json`, labelled as the Grafana Alloy config in deploy/alerting/ labels
// them (loki.source.journal + loki.relabel). No Loki server runs here, so this is the
// stand-in for its query engine: it walks the real parser's syntax tree and refuses
// (exit 2) any construct it does not implement rather than guess its meaning.
//
//   node logql.mjs LEZER_DIR parse EXPRS.json
//   node logql.mjs LEZER_DIR eval EXPRS.json ALLOY_FILE JOURNAL.jsonl AT_MS
//
// EXPRS.json is a JSON array of expressions. Output (stdout, JSON): per expression,
// parse: { ok, error }; eval: { series: [{ labels, value }], lines: [{ cursor, labels }] }
// where `lines` are the entries that passed a log pipeline of the expression.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const [lezerDir, mode, exprsFile, alloyFile, journalFile, atArg] = process.argv.slice(2);
const { parser } = await import(join(lezerDir, 'node_modules/@grafana/lezer-logql/index.es.js'));

class Unsupported extends Error {}

const exprs = JSON.parse(readFileSync(exprsFile, 'utf8'));

function syntaxError(expr) {
  const tree = parser.parse(expr);
  let bad = null;
  tree.iterate({
    enter(n) {
      if (n.type.isError && bad === null) bad = n.from;
    },
  });
  return bad === null ? null : `syntax error at offset ${bad}: ${JSON.stringify(expr.slice(bad, bad + 20))}`;
}

if (mode === 'parse') {
  console.log(JSON.stringify(exprs.map((e) => ({ ok: syntaxError(e) === null, error: syntaxError(e) }))));
  process.exit(0);
}
if (mode !== 'eval') throw new Error(`unknown mode ${mode}`);

// ------------------------------------------------------------------ Alloy: labels of an entry

// The `rule { ... }` blocks of the `loki.relabel` component and the static `labels` of
// `loki.source.journal`, read from the Alloy file (attributes: strings, string lists).
function readAlloy(text) {
  const noComments = text.replace(/\/\/[^\n]*/g, '');
  const attrs = (body) => {
    const out = {};
    for (const m of body.matchAll(/(\w+)\s*=\s*(\[[^\]]*\]|"(?:[^"\\]|\\.)*"|\{[^}]*\})/g)) {
      const v = m[2];
      if (v.startsWith('[')) out[m[1]] = [...v.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((s) => JSON.parse(`"${s[1]}"`));
      else if (v.startsWith('{')) {
        out[m[1]] = Object.fromEntries([...v.matchAll(/(\w+)\s*=\s*"((?:[^"\\]|\\.)*)"/g)].map((s) => [s[1], JSON.parse(`"${s[2]}"`)]));
      } else out[m[1]] = JSON.parse(v);
    }
    return out;
  };
  const rules = [...noComments.matchAll(/\brule\s*\{([^}]*)\}/g)].map((m) => attrs(m[1]));
  const source = noComments.match(/loki\.source\.journal\s+"[^"]*"\s*\{([\s\S]*?)\n\}/);
  if (!source) throw new Unsupported('no loki.source.journal block in the Alloy file');
  const staticLabels = attrs(source[1]).labels ?? {};
  if (/format_as_json\s*=\s*true/.test(source[1])) throw new Unsupported('format_as_json = true');
  return { rules, staticLabels };
}

function relabel(labels, rules) {
  for (const r of rules) {
    const action = r.action ?? 'replace';
    const value = (r.source_labels ?? []).map((l) => labels[l] ?? '').join(r.separator ?? ';');
    const re = new RegExp(`^(?:${r.regex ?? '(.*)'})$`, 's');
    const m = value.match(re);
    if (action === 'keep') {
      if (!m) return null;
    } else if (action === 'drop') {
      if (m) return null;
    } else if (action === 'replace') {
      if (!m) continue;
      const out = (r.replacement ?? '$1').replace(/\$\{?(\d+)\}?/g, (_, i) => m[Number(i)] ?? '');
      if (out === '') delete labels[r.target_label];
      else labels[r.target_label] = out;
    } else throw new Unsupported(`relabel action ${action}`);
  }
  return labels;
}

function fieldText(v) {
  if (typeof v === 'string') return v;
  if (Array.isArray(v) && v.every((b) => typeof b === 'number')) return Buffer.from(v).toString('utf8');
  return null; // repeated fields: Alloy keeps none of them as a label
}

function streams(journal, alloy) {
  const out = [];
  for (const e of journal) {
    const labels = {};
    for (const [k, v] of Object.entries(e)) {
      const t = fieldText(v);
      if (t !== null) labels[`__journal_${k.toLowerCase()}`] = t;
    }
    if (relabel(labels, alloy.rules) === null) continue;
    for (const k of Object.keys(labels)) if (k.startsWith('__')) delete labels[k];
    Object.assign(labels, alloy.staticLabels);
    out.push({ cursor: e.__CURSOR, ts: Number(BigInt(e.__REALTIME_TIMESTAMP) / 1000n), line: fieldText(e.MESSAGE) ?? '', labels });
  }
  return out;
}

// ------------------------------------------------------------------ LogQL

const kids = (n) => {
  const out = [];
  for (let c = n.firstChild; c; c = c.nextSibling) out.push(c);
  return out;
};
const child = (n, name) => kids(n).find((c) => c.name === name);

function evaluate(expr, entries, at) {
  const text = (n) => expr.slice(n.from, n.to);
  const str = (n) => {
    const t = text(n);
    return t.startsWith('`') ? t.slice(1, -1) : JSON.parse(t);
  };
  const selected = [];

  function matcher(n) {
    const [id, op, s] = kids(n);
    const name = text(id);
    const want = str(s);
    switch (op.name) {
      case 'Eq': return (l) => (l[name] ?? '') === want;
      case 'Neq': return (l) => (l[name] ?? '') !== want;
      case 'Re': { const re = new RegExp(`^(?:${want})$`, 's'); return (l) => re.test(l[name] ?? ''); }
      case 'Nre': { const re = new RegExp(`^(?:${want})$`, 's'); return (l) => !re.test(l[name] ?? ''); }
      default: throw new Unsupported(`matcher ${op.name}`);
    }
  }

  function matchers(n) {
    const out = [];
    for (const c of kids(n)) {
      if (c.name === 'Matchers') out.push(...matchers(c));
      else if (c.name === 'Matcher') out.push(matcher(c));
    }
    return out;
  }

  function lineFilter(n) {
    const [f, s] = kids(n);
    const op = kids(f)[0].name;
    const want = str(s);
    switch (op) {
      case 'PipeExact': return (line) => line.includes(want);
      case 'Neq': return (line) => !line.includes(want);
      case 'PipeMatch': { const re = new RegExp(want, 's'); return (line) => re.test(line); }
      case 'Nre': { const re = new RegExp(want, 's'); return (line) => !re.test(line); }
      default: throw new Unsupported(`line filter ${op}`);
    }
  }

  // logfmt as Loki's parser reads it; a key that is also a stream label gets `_extracted`.
  function logfmt(line, labels, streamLabels) {
    const re = /([^\s=]+)=("(?:[^"\\]|\\.)*"|\S*)/g;
    for (const m of line.matchAll(re)) {
      let key = m[1].replace(/[^a-zA-Z0-9_]/g, '_');
      if (/^[0-9]/.test(key)) key = `_${key}`;
      if (key in streamLabels) key = `${key}_extracted`;
      labels[key] = m[2].startsWith('"') ? JSON.parse(m[2]) : m[2];
    }
  }

  // A stage list from a PipelineExpr, in order.
  function stages(n, out = []) {
    for (const c of kids(n)) {
      if (c.name === 'PipelineExpr') stages(c, out);
      else if (c.name === 'PipelineStage') out.push(c);
    }
    return out;
  }

  function logQuery(selector, pipeline) {
    const ms = matchers(child(selector, 'Matchers'));
    const steps = [];
    for (const st of pipeline ? stages(pipeline) : []) {
      const [first, second] = kids(st);
      if (first.name === 'LineFilters') {
        const fs = [];
        const walk = (x) => kids(x).forEach((c) => (c.name === 'LineFilters' ? walk(c) : c.name === 'LineFilter' && fs.push(lineFilter(c))));
        walk(first);
        steps.push((e) => fs.every((f) => f(e.line)));
      } else if (first.name === 'Pipe' && second.name === 'LogfmtParser') {
        if (kids(second).length !== 1) throw new Unsupported('logfmt with parameters');
        steps.push((e) => (logfmt(e.line, e.labels, e.stream), true));
      } else if (first.name === 'Pipe' && second.name === 'LabelFilter') {
        const m = kids(second);
        if (m.length !== 1 || m[0].name !== 'Matcher') throw new Unsupported(`label filter ${text(second)}`);
        const f = matcher(m[0]);
        steps.push((e) => f(e.labels));
      } else throw new Unsupported(`pipeline stage ${text(st)}`);
    }
    return (e) => {
      if (!ms.every((f) => f(e.labels))) return null;
      const x = { line: e.line, labels: { ...e.labels }, stream: e.labels };
      return steps.every((s) => s(x)) ? x.labels : null;
    };
  }

  const durationMs = (d) => {
    let ms = 0;
    for (const [, n, u] of d.matchAll(/(\d+)(ms|s|m|h|d|w|y)/g)) {
      ms += Number(n) * { ms: 1, s: 1e3, m: 6e4, h: 36e5, d: 864e5, w: 6048e5, y: 31536e6 }[u];
    }
    return ms;
  };
  const key = (l) => JSON.stringify(Object.keys(l).sort().map((k) => [k, l[k]]));

  function metric(n) {
    switch (n.name) {
      case 'Expr':
      case 'MetricExpr':
        if (kids(n).length !== 1) throw new Unsupported(text(n));
        return metric(kids(n)[0]);
      case 'RangeAggregationExpr': {
        const [op, range] = [child(n, 'RangeOp'), child(n, 'LogRangeExpr')];
        if (kids(op)[0].name !== 'CountOverTime' || !range || kids(n).length !== 2) throw new Unsupported(text(n));
        const sel = child(range, 'Selector');
        const keep = logQuery(sel, child(range, 'PipelineExpr'));
        const width = durationMs(text(child(child(range, 'Range'), 'Duration')));
        const series = new Map();
        for (const e of entries) {
          if (!(e.ts > at - width && e.ts <= at)) continue;
          const labels = keep(e);
          if (labels === null) continue;
          selected.push({ cursor: e.cursor, labels });
          const k = key(labels);
          series.set(k, { labels, value: (series.get(k)?.value ?? 0) + 1 });
        }
        return [...series.values()];
      }
      case 'VectorAggregationExpr': {
        const op = kids(child(n, 'VectorOp'))[0].name;
        const grouping = child(n, 'Grouping');
        if (op !== 'Sum' || !grouping || kids(grouping)[0].name !== 'By') throw new Unsupported(text(n));
        const by = [];
        const walk = (x) => kids(x).forEach((c) => (c.name === 'Labels' ? walk(c) : c.name === 'Identifier' && by.push(text(c))));
        walk(child(grouping, 'Labels'));
        const out = new Map();
        for (const s of metric(child(n, 'MetricExpr'))) {
          const labels = Object.fromEntries(by.filter((l) => s.labels[l] !== undefined).map((l) => [l, s.labels[l]]));
          const k = key(labels);
          out.set(k, { labels, value: (out.get(k)?.value ?? 0) + s.value });
        }
        return [...out.values()];
      }
      case 'BinOpExpr': {
        const [left, op, modifier, right] = kids(n);
        if (text(modifier) !== '') throw new Unsupported(`binary operator modifier ${text(modifier)}`);
        const l = metric(left);
        if (op.name === 'Unless') {
          const r = new Set(metric(right).map((s) => key(s.labels)));
          return l.filter((s) => !r.has(key(s.labels)));
        }
        const lit = kids(kids(right)[0])[0];
        if (!lit || lit.name !== 'LiteralExpr') throw new Unsupported(`${op.name} between two vectors`);
        const x = Number(text(lit));
        const cmp = { Gtr: (a) => a > x, Gte: (a) => a >= x, Lss: (a) => a < x, Lte: (a) => a <= x, Eql: (a) => a === x, Neq: (a) => a !== x }[op.name];
        if (!cmp) throw new Unsupported(`operator ${op.name}`);
        return l.filter((s) => cmp(s.value));
      }
      default:
        throw new Unsupported(`${n.name}: ${text(n)}`);
    }
  }

  const err = syntaxError(expr);
  if (err) throw new Error(err);
  const top = parser.parse(expr).topNode;
  const series = metric(child(top, 'Expr'));
  return { series, lines: selected };
}

try {
  const alloy = readAlloy(readFileSync(alloyFile, 'utf8'));
  const journal = readFileSync(journalFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  const entries = streams(journal, alloy);
  const at = Number(atArg);
  console.log(JSON.stringify(exprs.map((e) => evaluate(e, entries, at))));
} catch (e) {
  console.error(`logql.mjs: ${e instanceof Unsupported ? 'not implemented here: ' : ''}${e.message}`);
  process.exit(e instanceof Unsupported ? 2 : 1);
}
