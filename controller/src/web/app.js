// Weft's web view: draws what netmaster's REST API says. Plain JS, no build step.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const PALETTE = ["#8ecae6", "#ffb703", "#90be6d", "#f28482", "#cdb4db", "#f6bd60", "#84a59d", "#b5838d"];

function el(tag, attrs, ...kids) {
  const e = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.setAttribute("class", v);
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k);
  return e;
}

async function getJSON(path, options) {
  const r = await fetch(path, options);
  const text = await r.text();
  let body;
  try { body = JSON.parse(text); } catch (_) { body = text; }
  if (!r.ok) throw new Error((body && body.error) || (r.status + " " + text));
  return body;
}

function netKey(t, n) { return t + ":" + n; }

function colorsOf(networks) {
  const colors = {};
  Object.keys(networks).sort().forEach((k, i) => { colors[k] = PALETTE[i % PALETTE.length]; });
  return colors;
}

function drawHosts(nodes, endpoints, networks) {
  const colors = colorsOf(networks);
  const legend = document.getElementById("legend");
  legend.replaceChildren();
  for (const k of Object.keys(colors)) {
    legend.append(el("span", { class: "legend-item", "data-network": k },
      el("span", { class: "swatch", style: "background:" + colors[k] }), k));
  }
  // Every registered host, and hosts endpoints name that are not registered.
  const hosts = nodes.map(n => ({ name: n.name, vtep: n.vtepIp, registered: true }));
  for (const e of endpoints) {
    if (!hosts.some(h => h.name === e.host)) hosts.push({ name: e.host, vtep: "", registered: false });
  }
  hosts.sort((a, b) => a.name.localeCompare(b.name));
  const colW = 260, epH = 40, top = 50;
  const rows = Math.max(1, ...hosts.map(h => endpoints.filter(e => e.host === h.name).length));
  const svg = el("svg:svg", { id: "hosts-svg", width: Math.max(1, hosts.length) * (colW + 20) + 20, height: top + rows * (epH + 8) + 20 });
  hosts.forEach((h, i) => {
    const x = 20 + i * (colW + 20);
    const g = el("svg:g", { class: "host", "data-host": h.name });
    const mine = endpoints.filter(e => e.host === h.name).sort((a, b) => a.endpointId.localeCompare(b.endpointId));
    g.append(el("svg:rect", { class: "host-box", x, y: 10, width: colW, height: top + mine.length * (epH + 8), rx: 6 }));
    g.append(el("svg:text", { class: "host-name", x: x + 10, y: 30, text: h.name + (h.registered ? "" : " (not registered)") }));
    g.append(el("svg:text", { x: x + 10, y: 46, text: h.vtep ? "VTEP " + h.vtep : "" }));
    mine.forEach((e, j) => {
      const y = top + 8 + j * (epH + 8);
      const k = netKey(e.tenantName, e.networkName);
      const eg = el("svg:g", { class: "endpoint", "data-endpoint": e.endpointId, "data-network": k });
      eg.append(el("svg:rect", { class: "ep-box", x: x + 10, y, width: colW - 20, height: epH, rx: 4, fill: colors[k] || "#ddd" }));
      eg.append(el("svg:text", { x: x + 16, y: y + 16, text: e.tenantName + "/" + e.container + (e.groupName ? " [" + e.groupName + "]" : "") }));
      eg.append(el("svg:text", { x: x + 16, y: y + 32, text: e.ipv4 + "  " + e.mac }));
      g.append(eg);
    });
    svg.append(g);
  });
  document.getElementById("hosts").replaceChildren(svg);
}

// Tenants as boxes holding their networks, each holding its groups (with member counts).
function drawTopology(tenants, networks, groups, endpoints, colors) {
  const pad = 10, groupH = 24, netW = 220;
  const nets = t => Object.values(networks).filter(n => n.tenantName === t).sort((a, b) => a.networkName.localeCompare(b.networkName));
  const grs = (t, n) => groups.filter(g => g.tenantName === t && g.networkName === n).sort((a, b) => a.groupName.localeCompare(b.groupName));
  const netH = (t, n) => 40 + grs(t, n).length * (groupH + 6);
  const tenantH = t => 30 + Math.max(0, ...nets(t.tenantName).map(n => netH(t.tenantName, n.networkName))) + pad;
  const tenantW = t => pad + Math.max(1, nets(t.tenantName).length) * (netW + pad);
  let y = pad;
  const width = Math.max(300, ...tenants.map(tenantW)) + 2 * pad;
  const svg = el("svg:svg", { id: "topology-svg", width, height: tenants.reduce((h, t) => h + tenantH(t) + pad, pad) });
  for (const t of tenants) {
    const name = t.tenantName;
    const g = el("svg:g", { class: "topo-tenant", "data-tenant": name });
    g.append(el("svg:rect", { class: "host-box", x: pad, y, width: tenantW(t), height: tenantH(t), rx: 8 }));
    g.append(el("svg:text", { class: "host-name", x: pad + 10, y: y + 20, text: "tenant " + name }));
    nets(name).forEach((n, i) => {
      const x = 2 * pad + i * (netW + pad), ny = y + 30, k = netKey(name, n.networkName);
      const ng = el("svg:g", { class: "topo-network", "data-network": k });
      ng.append(el("svg:rect", { class: "ep-box", x, y: ny, width: netW, height: netH(name, n.networkName), rx: 6, fill: colors[k] || "#ddd" }));
      ng.append(el("svg:text", { x: x + 8, y: ny + 16, text: n.networkName + "  " + n.subnet }));
      ng.append(el("svg:text", { x: x + 8, y: ny + 31, text: n.encap + " " + (n.pktTag || "") + ", " + endpoints.filter(e => e.tenantName === name && e.networkName === n.networkName).length + " endpoints" }));
      grs(name, n.networkName).forEach((gr, j) => {
        const gy = ny + 40 + j * (groupH + 6);
        const members = endpoints.filter(e => e.tenantName === name && e.networkName === n.networkName && e.groupName === gr.groupName).length;
        const gg = el("svg:g", { class: "topo-group", "data-group": netKey(name, gr.groupName) });
        gg.append(el("svg:rect", { x: x + 8, y: gy, width: netW - 16, height: groupH, rx: 4, fill: "#fff", stroke: gr.defaultDeny ? "#a31b1b" : "#555" }));
        gg.append(el("svg:text", { x: x + 14, y: gy + 16, text: "group " + gr.groupName + " (" + members + ")" + (gr.defaultDeny ? " default deny" : "") }));
        ng.append(gg);
      });
      g.append(ng);
    });
    svg.append(g);
    y += tenantH(t) + pad;
  }
  return svg;
}

function drawTenants(tenants, networks, groups, endpoints, colors) {
  const box = document.getElementById("tenants");
  box.replaceChildren(drawTopology(tenants, networks, groups, endpoints, colors));
  for (const t of tenants) {
    const name = t.tenantName;
    const nets = Object.values(networks).filter(n => n.tenantName === name);
    const netRows = nets.map(n => el("tr", { class: "network", "data-network": netKey(name, n.networkName) },
      el("td", { text: n.networkName }), el("td", { text: n.subnet }),
      el("td", { text: n.encap + " " + (n.pktTag || "") }),
      el("td", { text: String(endpoints.filter(e => e.tenantName === name && e.networkName === n.networkName).length) })));
    const grs = groups.filter(g => g.tenantName === name);
    const groupRows = grs.map(g => el("tr", { class: "group", "data-group": netKey(name, g.groupName) },
      el("td", { text: g.groupName }), el("td", { text: g.networkName }),
      el("td", { text: (g.policies || []).join(", ") + (g.defaultDeny ? " (default deny)" : "") }),
      el("td", { text: String(endpoints.filter(e => e.tenantName === name && e.groupName === g.groupName).length) })));
    box.append(el("div", { class: "tenant", "data-tenant": name },
      el("h3", { text: "tenant " + name }),
      el("table", {}, el("tr", {}, el("th", { text: "network" }), el("th", { text: "subnet" }), el("th", { text: "segment" }), el("th", { text: "endpoints" })), ...netRows),
      el("br"),
      el("table", {}, el("tr", {}, el("th", { text: "group" }), el("th", { text: "network" }), el("th", { text: "policies" }), el("th", { text: "endpoints" })), ...groupRows)));
  }
}

function drawMatrix(m) {
  const table = el("table", { class: "matrix", "data-tenant": m.tenant });
  table.append(el("tr", {}, el("th", { text: "from \\ to" }), ...m.groups.map(g => el("th", { text: g }))));
  for (const from of m.groups) {
    const tr = el("tr", {}, el("th", { text: from }));
    for (const to of m.groups) {
      const c = m.cells.find(c => c.from === from && c.to === to);
      const cls = c.summary === "none" ? "none" : c.summary === "any" ? "any" : "some";
      const title = (c.decidedBy || []).concat(c.notes || []).join("\n");
      tr.append(el("td", { class: cls, "data-from": from, "data-to": to, title, text: c.summary }));
    }
    table.append(tr);
  }
  return el("div", { class: "tenant-matrix" }, el("h3", { text: "tenant " + m.tenant }), table);
}

function drawTrace(report) {
  const v = document.getElementById("trace-verdict");
  v.className = report.verdict;
  v.textContent = report.verdict + ": " + report.decidedBy;
  const w = 240, gap = 60, h = 90;
  const svg = el("svg:svg", { id: "trace-svg", width: report.hops.length * (w + gap) + 20, height: h + 30 });
  svg.append(el("svg:defs", {}, el("svg:marker", { id: "arrow", markerWidth: 10, markerHeight: 10, refX: 9, refY: 3, orient: "auto" },
    el("svg:path", { d: "M0,0 L9,3 L0,6 z", fill: "#5a6b7c" }))));
  const details = el("div", { class: "steps" });
  report.hops.forEach((hop, i) => {
    const x = 10 + i * (w + gap);
    const last = i === report.hops.length - 1;
    const outcomes = hop.outcomes.map(o => o.kind + (o.endpoint ? " " + o.endpoint : "") + (o.remoteVtep ? " → " + o.remoteVtep : "") + (o.by ? ": " + o.by : "")).join("; ");
    const g = el("svg:g", { class: "hop", "data-host": hop.host });
    g.append(el("svg:rect", { class: "hop-box" + (last ? " " + report.verdict : ""), x, y: 10, width: w, height: h, rx: 6 }));
    g.append(el("svg:text", { class: "host-name", x: x + 10, y: 30, text: hop.host }));
    g.append(el("svg:text", { x: x + 10, y: 50, text: hop.steps.length + " steps" }));
    g.append(el("svg:text", { x: x + 10, y: 70, text: outcomes.slice(0, 40) }));
    svg.append(g);
    if (!last) svg.append(el("svg:line", { x1: x + w, y1: 55, x2: x + w + gap - 4, y2: 55, stroke: "#5a6b7c", "stroke-width": 2, "marker-end": "url(#arrow)" }));
    details.append(hop.host + "\n" + hop.steps.map(s => "  " + s.table + ". " + s.tableName + ": " + s.flow + (s.owner ? "  [" + s.owner + "]" : "")).join("\n") + "\n  → " + outcomes + "\n");
  });
  document.getElementById("trace-path").replaceChildren(svg, details);
}

async function submitTrace(ev) {
  ev.preventDefault();
  const f = ev.target;
  const req = { src: f.src.value.trim(), dst: f.dst.value.trim(), proto: f.proto.value, live: f.live.checked };
  if (f.dport.value) req.dport = Number(f.dport.value);
  const v = document.getElementById("trace-verdict");
  v.className = "";
  v.textContent = "tracing…";
  try {
    drawTrace(await getJSON("/api/v1/trace", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(req) }));
  } catch (e) {
    v.className = "error";
    v.textContent = "error: " + e.message;
    document.getElementById("trace-path").replaceChildren();
  }
}

async function load() {
  const status = document.getElementById("status");
  try {
    const [nodes, endpoints, tenants, netList, groups] = await Promise.all([
      getJSON("/api/v1/inspect/nodes/"), getJSON("/api/v1/inspect/endpoints/"),
      getJSON("/api/v1/tenants/"), getJSON("/api/v1/networks/"), getJSON("/api/v1/endpointGroups/")]);
    const networks = {};
    for (const n of netList) networks[netKey(n.tenantName, n.networkName)] = n;
    drawHosts(nodes, endpoints, networks);
    drawTenants(tenants, networks, groups, endpoints, colorsOf(networks));
    const matrices = await Promise.all(tenants.map(t => getJSON("/api/v1/tenants/" + encodeURIComponent(t.tenantName) + "/matrix")));
    document.getElementById("matrices").replaceChildren(...matrices.map(drawMatrix));
    status.textContent = "loaded: " + nodes.length + " hosts, " + endpoints.length + " endpoints";
    status.dataset.state = "loaded";
  } catch (e) {
    status.textContent = "error: " + e.message;
    status.dataset.state = "error";
  }
  const params = new URLSearchParams(location.search);
  if (params.get("src") && params.get("dst")) {
    const f = document.getElementById("trace-form");
    f.src.value = params.get("src"); f.dst.value = params.get("dst");
    f.proto.value = params.get("proto") || "icmp";
    if (params.get("dport")) f.dport.value = params.get("dport");
    f.requestSubmit();
  }
}

document.getElementById("trace-form").addEventListener("submit", submitTrace);
load();
