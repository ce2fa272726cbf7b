/* kubezt report page: reads the JSON in #data and draws the graph, matrix, findings, blast
   radius and (for a diff) the changes. No library, no network. */
"use strict";
(function () {
  const D = JSON.parse(document.getElementById("data").textContent);
  const SVG = "http://www.w3.org/2000/svg";
  const W = D.workloads; // [id, nsIndex, class, kind, serviceAccount, replicas]
  const NS = D.namespaces;
  const PORTS = D.ports;
  const STATUS_TEXT = { allow: "allowed", partial: "allowed for some requests", l4: "denied by L3/L4",
    mtls: "denied by mTLS", authz: "denied by authorization" };
  const CELLS = D.cells; // outside cells: [label (external:CIDR), representative address]
  const isCell = (name) => name.startsWith("external:");

  // ---- derived indexes -------------------------------------------------------------------
  const members = []; // class -> workload indexes
  const byId = new Map();
  W.forEach((w, i) => { (members[w[2]] || (members[w[2]] = [])).push(i); byId.set(w[0], i); });
  const nsMembers = NS.map(() => []);
  W.forEach((w, i) => nsMembers[w[1]].push(i));
  const classNs = members.map((ms) => {
    const m = new Map();
    (ms || []).forEach((wi) => m.set(W[wi][1], (m.get(W[wi][1]) || 0) + 1));
    return m;
  });
  const changes = D.diff ? D.diff.changes : [];
  const changedPair = new Map(); // "src|dst" -> "opened"|"closed"
  const changedNs = new Map();
  for (const c of changes) {
    const kind = c.opens ? "opened" : "closed";
    changedPair.set(c.src + "|" + c.dst, changedPair.get(c.src + "|" + c.dst) === "opened" ? "opened" : kind);
    const a = nsOf(c.src), b = nsOf(c.dst);
    const k = a + "|" + b;
    changedNs.set(k, changedNs.get(k) === "opened" ? "opened" : kind);
  }
  function nsOf(id) { return isCell(id) ? id : id.split("/")[0]; }

  const state = { tab: "graph", ns: null, selected: null, reached: null };
  const el = (id) => document.getElementById(id);
  function h(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "onclick") e.addEventListener("click", v); else if (v !== null && v !== undefined) e.setAttribute(k, v);
    }
    for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
    return e;
  }
  function s(tag, attrs) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    return e;
  }

  // ---- filters ---------------------------------------------------------------------------
  const fNs = el("f-ns"), fPort = el("f-port"), fLayer = el("f-layer");
  PORTS.forEach((p, i) => fPort.append(h("option", { value: String(i) }, p)));
  function nsVisible(name) {
    const q = fNs.value.trim().toLowerCase();
    return !q || name.toLowerCase().includes(q);
  }
  function edgePasses(e) {
    if (fPort.value !== "" && e[2] !== Number(fPort.value)) return false;
    if (fLayer.value !== "" && e[3] !== fLayer.value) return false;
    return true;
  }
  for (const f of [fNs, fPort, fLayer]) for (const ev of ["input", "change"]) f.addEventListener(ev, () => render());

  // ---- aggregation ----------------------------------------------------------------------
  function pairCount(s, d, a, b) {
    const ca = classNs[s].get(a) || 0, cb = classNs[d].get(b) || 0;
    return s === d && a === b ? ca * (ca - 1) : ca * cb;
  }
  function bucket() { return { allow: 0, partial: 0, l4: 0, mtls: 0, authz: 0, plain: 0, edges: [] }; }
  function nsAggregate() {
    const agg = new Map();
    D.edges.forEach((e, ei) => {
      if (!edgePasses(e)) return;
      for (const a of classNs[e[0]].keys()) for (const b of classNs[e[1]].keys()) {
        const n = pairCount(e[0], e[1], a, b);
        if (!n) continue;
        const k = a + "|" + b;
        let g = agg.get(k); if (!g) agg.set(k, (g = bucket()));
        g[e[3]] += n; if (!e[4] && (e[3] === "allow" || e[3] === "partial")) g.plain += n;
        g.edges.push(ei);
      }
    });
    D.outsideEdges.forEach((e, oi) => {
      if (!edgePasses(e)) return;
      for (const a of classNs[e[1]].keys()) {
        const k = e[0] === "in" ? "c" + e[6] + "|" + a : a + "|c" + e[6];
        let g = agg.get(k); if (!g) agg.set(k, (g = bucket()));
        g[e[3]] += classNs[e[1]].get(a); g.plain += classNs[e[1]].get(a);
        g.edges.push(-1 - oi);
      }
    });
    return agg;
  }
  function dominant(g) {
    for (const k of ["allow", "partial", "authz", "mtls", "l4"]) if (g[k]) return k;
    return "l4";
  }

  // ---- header, tabs --------------------------------------------------------------------
  el("title").textContent = D.title;
  const reachable = D.counts.allowed;
  let summary = `${W.length} workloads in ${NS.length} namespaces · ${D.edges.filter((e) => e[3] === "allow" || e[3] === "partial").length} allowed class edges` +
    ` · audit score ${D.audit.score}/100, ${D.audit.findings.length} findings`;
  if (!D.complete) summary += ` · denied edges not drawn (${D.counts.denied} denied class pairs exceed the budget of ${D.counts.budget} explanations)`;
  if (D.diff) summary = `diff ${D.diff.old} → ${D.diff.new}: ${changes.filter((c) => c.opens).length} newly allowed, ${changes.filter((c) => !c.opens).length} newly denied · ` + summary;
  el("summary").textContent = summary;
  void reachable;
  const tabs = [["graph", "Graph"], ["matrix", "Matrix"], ["findings", "Findings"], ["blast", "Blast radius"]];
  if (D.diff) tabs.unshift(["changes", "Changes"]);
  if (D.diff) state.tab = "changes";
  for (const [id, label] of tabs) {
    el("tabs").append(h("button", { id: "tab-" + id, "data-tab": id, onclick: () => { state.tab = id; render(); } }, label));
  }
  const legend = el("legend");
  for (const k of Object.keys(STATUS_TEXT)) legend.append(h("span", {}, h("i", { style: `border-color:var(--${k})` }), STATUS_TEXT[k]));
  legend.append(h("span", {}, h("i", { style: "border-top-style:dashed;border-color:#555" }), "plaintext (no mTLS)"));
  if (D.diff) {
    legend.append(h("span", {}, h("i", { style: "border-color:var(--opened)" }), "newly allowed"));
    legend.append(h("span", {}, h("i", { style: "border-color:var(--closed)" }), "newly denied"));
  }

  // ---- graph -----------------------------------------------------------------------------
  function layout(nodes, w, hgt, inner) {
    const cx = w / 2, cy = hgt / 2, r = Math.min(w, hgt) / 2 - 60;
    const ring = inner ? nodes.filter((n) => n.inner) : nodes;
    const outer = inner ? nodes.filter((n) => !n.inner) : [];
    const rin = inner ? r * 0.5 : r;
    ring.forEach((n, i) => { const t = 2 * Math.PI * i / Math.max(ring.length, 1) - Math.PI / 2; n.x = cx + rin * Math.cos(t); n.y = cy + rin * Math.sin(t); });
    outer.forEach((n, i) => { const t = 2 * Math.PI * i / Math.max(outer.length, 1) - Math.PI / 2 + 0.2; n.x = cx + r * Math.cos(t); n.y = cy + r * Math.sin(t); });
  }
  function drawGraph() {
    const svg = el("graph");
    svg.replaceChildren();
    const box = svg.getBoundingClientRect();
    const w = box.width || 900, hgt = box.height || 600;
    svg.setAttribute("viewBox", `0 0 ${w} ${hgt}`);
    const defs = s("defs");
    for (const k of ["allow", "partial", "l4", "mtls", "authz", "opened", "closed"]) {
      const m = s("marker", { id: "arrow-" + k, viewBox: "0 0 10 10", refX: "10", refY: "5", markerWidth: "6", markerHeight: "6", orient: "auto-start-reverse" });
      const p = s("path", { d: "M 0 0 L 10 5 L 0 10 z" }); p.style.fill = `var(--${k})`; m.append(p); defs.append(m);
    }
    svg.append(defs);
    const crumbs = el("crumbs"); crumbs.replaceChildren();
    let nodes, links;
    if (state.ns === null) {
      crumbs.append(h("b", {}, "All namespaces"), h("span", { class: "note" }, " — click a namespace to see its workloads"));
      ({ nodes, links } = nsGraph());
      layout(nodes, w, hgt, false);
    } else {
      crumbs.append(h("a", { onclick: () => { state.ns = null; render(); } }, "All namespaces"), " › ", h("b", {}, state.ns));
      ({ nodes, links } = workloadGraph(state.ns));
      layout(nodes, w, hgt, true);
    }
    const pos = new Map(nodes.map((n) => [n.id, n]));
    const gl = s("g", { id: "edges" }), gn = s("g", { id: "nodes" });
    for (const l of links) {
      const a = pos.get(l.src), b = pos.get(l.dst);
      if (!a || !b || a === b) continue;
      const dx = b.x - a.x, dy = b.y - a.y, len = Math.hypot(dx, dy) || 1;
      const ra = a.r + 2, rb = b.r + 4;
      const x1 = a.x + dx * ra / len, y1 = a.y + dy * ra / len, x2 = b.x - dx * rb / len, y2 = b.y - dy * rb / len;
      const mx = (x1 + x2) / 2 - dy * 0.12, my = (y1 + y2) / 2 + dx * 0.12;
      const cls = ["edge", "s-" + l.status];
      if (l.plain) cls.push("plaintext");
      if (l.changed) cls.push("changed-" + l.changed);
      const p = s("path", { d: `M${x1},${y1} Q${mx},${my} ${x2},${y2}`, class: cls.join(" "),
        "data-src": l.src, "data-dst": l.dst, "data-status": l.status, "data-changed": l.changed || "",
        "marker-end": `url(#arrow-${l.changed || l.status})` });
      const t = s("title"); t.textContent = l.title; p.append(t);
      p.addEventListener("click", (ev) => { ev.stopPropagation(); l.open(); });
      gl.append(p);
    }
    for (const n of nodes) {
      const cls = ["node", n.kind];
      if (state.selected === n.id) cls.push("selected");
      if (state.reached && n.kind === "workload") {
        if (state.reached.has(n.id)) cls.push("reached"); else if (state.selected !== n.id) cls.push("dimmed");
      }
      const g = s("g", { class: cls.join(" "), "data-id": n.id, transform: `translate(${n.x},${n.y})` });
      const c = s("circle", { r: n.r }); g.append(c);
      // past 40 workloads only the selected one is labelled (the others on hover)
      const crowded = nodes.length > 40 && n.kind === "workload" && state.selected !== n.id;
      if (!crowded) { const t = s("text", { x: n.r + 3, y: 4 }); t.textContent = n.label; g.append(t); }
      const tt = s("title"); tt.textContent = n.title || n.label; g.append(tt);
      g.addEventListener("click", (ev) => { ev.stopPropagation(); n.open(); });
      gn.append(g);
    }
    svg.append(gl, gn);
  }
  function linkFrom(src, dst, g, ports) {
    const status = dominant(g);
    const parts = Object.keys(STATUS_TEXT).filter((k) => g[k]).map((k) => `${g[k]} ${STATUS_TEXT[k]}`);
    return { src, dst, status, plain: g.plain > 0, edges: g.edges,
      title: `${src} → ${dst}: ${parts.join(", ")}${g.plain ? `; ${g.plain} plaintext` : ""}${ports ? " on " + ports : ""}` };
  }
  function nsGraph() {
    const agg = nsAggregate();
    const nodes = NS.map((n, i) => ({ id: "ns:" + n, label: `${n} (${nsMembers[i].length})`, kind: "ns", r: 6 + Math.min(16, Math.sqrt(nsMembers[i].length) * 2),
      open: () => { state.ns = n; render(); } })).filter((n) => nsVisible(n.id.slice(3)));
    CELLS.forEach(([label, address], ci) => nodes.push({ id: "ns:" + label, label, kind: "outside", r: 9,
      title: `addresses outside the cluster no policy tells apart (${label}), represented by ${address}`, open: () => showOutside(ci) }));
    const links = [];
    for (const [k, g] of agg) {
      const [ai, bi] = k.split("|");
      const name = (x) => x[0] === "c" ? CELLS[Number(x.slice(1))][0] : NS[x];
      const a = name(ai), b = name(bi);
      if (a === b) continue;
      const l = linkFrom("ns:" + a, "ns:" + b, g);
      l.changed = changedNs.get(a + "|" + b);
      l.open = () => showEdgeList(`${a} → ${b}`, g.edges, (wa, wb) => nsOf(wa) === a && nsOf(wb) === b);
      links.push(l);
    }
    // changed pairs with no edge left in the new graph (newly denied and not drawn)
    for (const [k, kind] of changedNs) {
      const [a, b] = k.split("|");
      if (a !== b && !links.some((l) => l.src === "ns:" + a && l.dst === "ns:" + b)) {
        links.push({ src: "ns:" + a, dst: "ns:" + b, status: "l4", plain: false, changed: kind, title: `${a} → ${b}: changed`, open: () => { state.tab = "changes"; render(); } });
      }
    }
    return { nodes, links };
  }
  function workloadGraph(ns) {
    const nsi = NS.indexOf(ns);
    const LIMIT = 300;
    const mine = nsMembers[nsi].slice(0, LIMIT);
    const shown = new Set(mine.map((i) => W[i][0]));
    const nodes = mine.map((wi) => ({ id: W[wi][0], label: W[wi][0].split("/")[1], kind: "workload", inner: true, r: 7,
      title: `${W[wi][0]} (${W[wi][3]}, ServiceAccount ${W[wi][4]})`, open: () => selectWorkload(W[wi][0]) }));
    const agg = new Map(); // "srcId|dstId" -> bucket
    const add = (a, b, e, ei) => {
      const k = a + "|" + b; let g = agg.get(k); if (!g) agg.set(k, (g = bucket()));
      g[e[3]] += 1; if (!e[4] && (e[3] === "allow" || e[3] === "partial")) g.plain += 1; g.edges.push(ei);
    };
    D.edges.forEach((e, ei) => {
      if (!edgePasses(e)) return;
      const sIn = classNs[e[0]].has(nsi), dIn = classNs[e[1]].has(nsi);
      if (!sIn && !dIn) return;
      const srcs = members[e[0]], dsts = members[e[1]];
      for (const a of srcs) {
        const ai = W[a][0], aIn = shown.has(ai);
        for (const b of dsts) {
          if (a === b) continue;
          const bi = W[b][0], bIn = shown.has(bi);
          if (aIn && bIn) add(ai, bi, e, ei);
          else if (aIn) add(ai, "ns:" + nsOf(bi), e, ei);
          else if (bIn) add("ns:" + nsOf(ai), bi, e, ei);
        }
      }
    });
    D.outsideEdges.forEach((e, oi) => {
      if (!edgePasses(e)) return;
      for (const wi of members[e[1]]) if (shown.has(W[wi][0])) {
        const cell = "ns:" + CELLS[e[6]][0];
        if (e[0] === "in") add(cell, W[wi][0], e, -1 - oi); else add(W[wi][0], cell, e, -1 - oi);
      }
    });
    const peers = new Set();
    const bare = (x) => x.startsWith("ns:external:") ? x.slice(3) : x;
    const shownOr = (x) => shown.has(x) || isCell(x);
    const links = [];
    for (const [k, g] of agg) {
      const [a, b] = k.split("|");
      for (const x of [a, b]) if (x.startsWith("ns:")) peers.add(x);
      const l = linkFrom(a, b, g);
      l.changed = changedPair.get(bare(a) + "|" + bare(b));
      l.open = () => showEdgeList(`${a} → ${b}`, g.edges, (wa, wb) => (wa === a || "ns:" + nsOf(wa) === a) && (wb === b || "ns:" + nsOf(wb) === b));
      links.push(l);
    }
    for (const c of changes) {
      if (c.opens || !shownOr(c.src) || !shownOr(c.dst) || !(shown.has(c.src) || shown.has(c.dst))) continue;
      const src = isCell(c.src) ? "ns:" + c.src : c.src, dst = isCell(c.dst) ? "ns:" + c.dst : c.dst;
      if (!links.some((l) => l.src === src && l.dst === dst)) {
        const by = c.new.explanation.deniedBy;
        for (const x of [src, dst]) if (x.startsWith("ns:")) peers.add(x);
        links.push({ src, dst, status: "l4", plain: false, changed: "closed", title: `${c.src} → ${c.dst} ${c.port}/${c.protocol}: newly denied by ${by}`,
          open: () => showChange(c) });
      }
    }
    for (const p of peers) {
      const name = p.slice(3);
      const ci = CELLS.findIndex((c) => c[0] === name);
      nodes.push({ id: p, label: name, kind: ci >= 0 ? "outside" : "ns", r: 9, open: ci >= 0 ? () => showOutside(ci) : () => { state.ns = name; render(); } });
    }
    if (nsMembers[nsi].length > LIMIT) el("crumbs").append(h("span", { class: "note" }, ` — showing ${LIMIT} of ${nsMembers[nsi].length} workloads`));
    return { nodes, links };
  }

  // ---- panel: explanations, edge lists, blast radius ------------------------------------
  const panel = el("panel");
  function showPanel(...kids) { panel.replaceChildren(...kids); }
  function edgeOf(ei) {
    if (ei >= 0) return D.edges[ei];
    const e = D.outsideEdges[-1 - ei];
    return e[0] === "in" ? [-1 - e[6], e[1], e[2], e[3], e[4], e[5], e[7]] : [e[1], -1 - e[6], e[2], e[3], e[4], e[5], e[7]];
  }
  function endName(c) { return c < 0 ? "external:" + CELLS[-1 - c][1] : W[members[c][0]][0]; }
  function classLabel(c) {
    if (c < 0) return `${CELLS[-1 - c][0]} (${CELLS[-1 - c][1]})`;
    const ms = members[c];
    return ms.length === 1 ? W[ms[0]][0] : `${W[ms[0]][0]} and ${ms.length - 1} alike`;
  }
  function showEdgeList(title, edgeIdx, _filter) {
    const rows = edgeIdx.slice(0, 200).map((ei) => {
      const e = edgeOf(ei);
      return h("tr", { class: "clickable", onclick: () => showExplanation(e) },
        h("td", {}, classLabel(e[0])), h("td", {}, classLabel(e[1])), h("td", {}, PORTS[e[2]]),
        h("td", { class: "s-" + e[3] }, STATUS_TEXT[e[3]] + (e[4] ? ", mTLS" : (e[3] === "allow" || e[3] === "partial" ? ", plaintext" : ""))));
    });
    showPanel(h("h2", {}, title), h("p", { class: "note" }, `${edgeIdx.length} class edge(s); click one for its explanation`),
      h("table", { id: "edge-list" }, h("tr", {}, h("th", {}, "source"), h("th", {}, "destination"), h("th", {}, "port"), h("th", {}, "verdict")), ...rows));
  }
  function stepsList(steps) {
    return h("ol", { class: "steps" }, ...steps.map((st) => h("li", {},
      h("span", { class: "layer" }, `[${st.layer}]`), st.direction ? ` ${st.direction.toLowerCase()} ` : " ",
      h("span", { class: "eff-" + st.effect }, st.effect), ` ${st.reason}: ${st.detail}`,
      st.location ? h("div", { class: "note mono" }, st.location + (st.path ? " " + st.path : "")) : "")));
  }
  function showExplanation(e) {
    const head = h("h2", { id: "explanation" }, `${classLabel(e[0])} → ${classLabel(e[1])} ${PORTS[e[2]]}`);
    const verdict = h("p", {}, h("b", { class: "s-" + e[3] }, STATUS_TEXT[e[3]]), e[4] ? " · mutual TLS" : " · plaintext");
    const kids = [head, verdict];
    if (e[6]) kids.push(h("p", {}, "requests that pass: " + e[6].map((r) => `${r.method} ${r.path}`).join(", ")));
    if (e[5] >= 0) {
      const x = D.explanations[e[5]];
      kids.push(stepsList(x.steps), h("p", { class: "note" }, "same as: ", h("code", {}, x.command)));
    } else {
      kids.push(h("p", { class: "note" }, `not precomputed (more than ${D.counts.budget} edges); run: `,
        h("code", {}, `kubezt explain ${endName(e[0])} ${endName(e[1])} --port ${PORTS[e[2]].split(/[-,/]/)[0]}${PORTS[e[2]].endsWith("/TCP") ? "" : " --protocol " + PORTS[e[2]].split("/")[1]} ${D.paths.join(" ")}`)));
    }
    showPanel(...kids);
  }
  function showOutside(ci) {
    const rows = D.outsideEdges.map((e, oi) => -1 - oi).filter((ei) => D.outsideEdges[-1 - ei][6] === ci);
    showEdgeList(`${CELLS[ci][0]} outside the cluster (represented by ${CELLS[ci][1]}): allowed connections`, rows);
  }
  function showChange(c) {
    showPanel(h("h2", {}, `${c.src} → ${c.dst} ${c.port}/${c.protocol}`),
      h("p", {}, h("b", { class: c.opens ? "opened" : "closed" }, c.change)),
      h("h3", {}, "before: " + c.old.explanation.verdict + (c.old.explanation.deniedBy ? " by " + c.old.explanation.deniedBy : "")), stepsList(c.old.explanation.steps),
      h("h3", {}, "after: " + c.new.explanation.verdict + (c.new.explanation.deniedBy ? " by " + c.new.explanation.deniedBy : "")), stepsList(c.new.explanation.steps));
  }
  // blast radius at class level: members of one class reach the same classes
  const succ = members.map(() => new Map()); // class -> class -> [edge idx]
  D.edges.forEach((e, ei) => {
    if (e[3] !== "allow" && e[3] !== "partial") return;
    const m = succ[e[0]]; (m.get(e[1]) || m.set(e[1], []).get(e[1])).push(ei);
  });
  function blast(id) {
    const wi = byId.get(id), c0 = W[wi][2];
    const reached = new Map(); // workload idx -> {hop, via:Set(class), edges:[]}
    let frontier = [c0];
    const seenClass = new Map([[c0, 0]]);
    let hop = 0;
    while (frontier.length) {
      hop += 1;
      const next = [];
      for (const c of frontier) {
        for (const [d, eis] of succ[c]) {
          for (const m of members[d]) {
            if (m === wi) continue;
            let r = reached.get(m);
            if (!r) { r = { hop, via: new Set(), edges: [] }; reached.set(m, r); }
            if (r.hop === hop) { r.via.add(c); r.edges.push(...eis); }
          }
          // every member of a class reaches the same classes: a class is expanded once
          if (!seenClass.has(d)) { seenClass.set(d, hop); next.push(d); }
        }
      }
      frontier = next;
    }
    return reached;
  }
  function selectWorkload(id) {
    state.selected = id;
    const reached = blast(id);
    state.reached = new Set([...reached.keys()].map((i) => W[i][0]));
    const hops = new Map();
    for (const [m, r] of reached) (hops.get(r.hop) || hops.set(r.hop, []).get(r.hop)).push([m, r]);
    const kids = [h("h2", { id: "blast-title" }, `Blast radius of ${id}`),
      h("p", { id: "blast-summary" }, `${reached.size} workload(s) reached, ${(hops.get(1) || []).length} directly, in ${hops.size} hop(s)`)];
    for (const [n, list] of [...hops].sort((a, b) => a[0] - b[0])) {
      list.sort((a, b) => W[a[0]][0].localeCompare(W[b[0]][0]));
      kids.push(h("div", { class: "hop", "data-hop": n }, h("h3", {}, `hop ${n}: ${list.length}`),
        h("ul", {}, ...list.slice(0, 300).map(([m, r]) => h("li", { class: "reached-workload", "data-id": W[m][0] }, W[m][0], " ",
          h("span", { class: "note" }, [...new Set(r.edges.map((ei) => PORTS[D.edges[ei][2]]))].join(", ")))))));
    }
    showPanel(...kids);
    if (state.tab !== "graph" || state.ns !== nsOf(id)) { state.tab = "graph"; state.ns = nsOf(id); }
    render();
  }

  // ---- matrix -----------------------------------------------------------------------------
  function drawMatrix() {
    const agg = nsAggregate();
    const vis = NS.map((n, i) => [n, i]).filter(([n]) => nsVisible(n));
    const max = Math.max(1, ...[...agg.values()].map((g) => g.allow + g.partial));
    const head = h("tr", {}, h("th", {}, "source \\ destination"), ...vis.map(([n]) => h("th", { class: "col" }, n)));
    const rows = vis.map(([a, ai]) => h("tr", { "data-ns": a }, h("th", {}, a), ...vis.map(([b, bi]) => {
      const g = agg.get(ai + "|" + bi);
      if (!g) return h("td", { class: "cell", "data-src": a, "data-dst": b }, "");
      const n = g.allow + g.partial, den = g.l4 + g.mtls + g.authz;
      const alpha = n ? 0.15 + 0.85 * n / max : 0;
      const td = h("td", { class: "cell", "data-src": a, "data-dst": b, title: linkFrom(a, b, g).title,
        style: n ? `background:rgba(46,157,68,${alpha.toFixed(2)})` : (den ? "background:rgba(208,52,44,.12)" : "") }, n ? String(n) : (den ? "×" : ""));
      const ch = changedNs.get(a + "|" + b);
      if (ch) td.style.outline = `2px solid var(--${ch})`;
      td.addEventListener("click", () => showEdgeList(`${a} → ${b}`, g.edges));
      return td;
    })));
    el("matrix").replaceChildren(h("p", { class: "note" }, "Allowed workload connections per namespace pair (× = only denied edges); click a cell for its edges."),
      h("table", { id: "heatmap" }, head, ...rows));
  }

  // ---- findings, ranking, changes ----------------------------------------------------------
  function drawFindings() {
    const sc = D.audit.namespaces.filter((n) => nsVisible(n.namespace)).map((n) => h("tr", {}, h("td", {}, n.namespace), h("td", {}, n.score), h("td", {}, n.workloads), h("td", {}, n.findings), h("td", {}, n.rules.join(", "))));
    const fs = D.audit.findings.filter((f) => !f.namespace || nsVisible(f.namespace)).map((f) => h("tr", { class: "finding" },
      h("td", { class: "sev-" + f.severity }, f.severity), h("td", {}, f.ruleId), h("td", {}, f.object, h("div", { class: "note mono" }, f.location || "")),
      h("td", {}, f.message, h("div", { class: "note" }, "fix: " + f.remediation))));
    el("findings").replaceChildren(h("h2", {}, `Audit: score ${D.audit.score}/100`),
      h("table", { id: "scores" }, h("tr", {}, ...["namespace", "score", "workloads", "findings", "rules"].map((x) => h("th", {}, x))), ...sc),
      h("h2", {}, `${D.audit.findings.length} findings`),
      h("table", { id: "finding-table" }, h("tr", {}, ...["severity", "rule", "object", "finding"].map((x) => h("th", {}, x))), ...fs));
  }
  function drawRanking() {
    const rows = D.ranking.filter((r) => nsVisible(nsOf(r.workload))).slice(0, 500).map((r, i) => h("tr", { class: "clickable rank", "data-id": r.workload, onclick: () => selectWorkload(r.workload) },
      h("td", {}, i + 1), h("td", {}, r.workload), h("td", {}, r.reached), h("td", {}, r.direct), h("td", {}, r.sharedIdentity)));
    el("ranking").replaceChildren(h("p", { class: "note" }, "Workloads by blast radius (reached transitively, then directly). Click one to see what it reaches hop by hop."),
      h("table", { id: "rank-table" }, h("tr", {}, ...["#", "workload", "reached", "direct", "same identity"].map((x) => h("th", {}, x))), ...rows));
  }
  function drawChanges() {
    if (!D.diff) return;
    const rows = changes.filter((c) => nsVisible(nsOf(c.src)) || nsVisible(nsOf(c.dst))).map((c) => h("tr", { class: "clickable change " + (c.opens ? "opened" : "closed"), onclick: () => showChange(c) },
      h("td", {}, c.src), h("td", {}, c.dst), h("td", {}, `${c.port}/${c.protocol}`), h("td", { class: c.opens ? "opened" : "closed" }, c.change),
      h("td", {}, c.old.explanation.deniedBy || c.old.explanation.verdict), h("td", {}, c.new.explanation.deniedBy || c.new.explanation.verdict)));
    el("changes").replaceChildren(h("p", {}, `${D.diff.old} → ${D.diff.new}`),
      D.diff.added.length ? h("p", {}, "added workloads: " + D.diff.added.join(", ")) : "",
      D.diff.removed.length ? h("p", {}, "removed workloads: " + D.diff.removed.join(", ")) : "",
      h("table", { id: "change-table" }, h("tr", {}, ...["source", "destination", "port", "change", "before", "after"].map((x) => h("th", {}, x))), ...rows));
  }

  function render() {
    for (const b of el("tabs").children) b.classList.toggle("on", b.dataset.tab === state.tab);
    for (const v of document.querySelectorAll(".view")) v.classList.toggle("on", v.id === "view-" + state.tab);
    if (state.tab === "graph") drawGraph();
    else if (state.tab === "matrix") drawMatrix();
    else if (state.tab === "findings") drawFindings();
    else if (state.tab === "blast") drawRanking();
    else if (state.tab === "changes") drawChanges();
    document.body.dataset.ready = "1";
  }
  window.addEventListener("resize", () => { if (state.tab === "graph") drawGraph(); });
  render();
})();
