import { html } from "./util.js";

// Size over time as an inline SVG: a line over the points, the first and last times under it,
// the smallest and largest sizes beside it. `points` are {start, size}.
export function SizeChart({ points, label, width = 320, height = 90 }) {
  if (!points || !points.length) return html`<p class="muted">No size history yet.</p>`;
  const pad = { left: 34, right: 6, top: 8, bottom: 18 };
  const sizes = points.map((p) => p.size);
  const top = Math.max(1, ...sizes);
  const bottom = Math.min(0, ...sizes);
  const w = width - pad.left - pad.right;
  const h = height - pad.top - pad.bottom;
  const x = (i) => pad.left + (points.length === 1 ? w : (i * w) / (points.length - 1));
  const y = (v) => pad.top + h - ((v - bottom) / (top - bottom || 1)) * h;
  const line = points.map((p, i) => `${x(i).toFixed(1)},${y(p.size).toFixed(1)}`).join(" ");
  const first = points[0].start.slice(5, 16).replace("T", " ");
  const last = points[points.length - 1].start.slice(5, 16).replace("T", " ");
  const now = points[points.length - 1].size;
  return html`
    <svg class="chart" viewBox=${`0 0 ${width} ${height}`} role="img" aria-label=${`${label}: size ${now} now, from ${first} to ${last}`}>
      <title>${label}</title>
      <line x1=${pad.left} y1=${pad.top + h} x2=${pad.left + w} y2=${pad.top + h} class="axis" />
      <line x1=${pad.left} y1=${pad.top} x2=${pad.left} y2=${pad.top + h} class="axis" />
      <text x=${pad.left - 4} y=${pad.top + 8} class="tick" text-anchor="end">${top}</text>
      <text x=${pad.left - 4} y=${pad.top + h} class="tick" text-anchor="end">${bottom}</text>
      <text x=${pad.left} y=${height - 4} class="tick">${first}</text>
      <text x=${pad.left + w} y=${height - 4} class="tick" text-anchor="end">${last}</text>
      <polyline points=${line} class="series" />
      ${points.map((p, i) => html`<circle cx=${x(i)} cy=${y(p.size)} r="2" class="dot"><title>${`${p.start}: ${p.size} (+${p.entered} −${p.exited})`}</title></circle>`)}
    </svg>`;
}
