// Render an analysis for people. Everything the model wrote goes in via textContent,
// never innerHTML: the model's text is untrusted.

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, props);
  for (const child of children) if (child != null) node.append(child);
  return node;
}

const text = (value, fallback) => {
  const s = typeof value === "string" ? value.trim() : "";
  return s || fallback;
};

function characterCard(character, index) {
  const name = text(character?.character_name, `Figure ${index + 1}`);
  const card = el("li", { className: "character-card" });
  card.append(el("h4", { className: "character-name", textContent: name }));
  const description = text(character?.description, "");
  if (description) card.append(el("p", { className: "character-description", textContent: description }));
  const where = text(character?.location, "");
  if (where) {
    card.append(
      el("p", { className: "character-location" }, el("strong", { textContent: "Where: " }), where),
    );
  }
  const reasoning = text(character?.reasoning, "");
  if (reasoning) {
    card.append(
      el(
        "p",
        { className: "character-reasoning" },
        el("strong", { textContent: "How it was identified: " }),
        reasoning,
      ),
    );
  }
  return card;
}

function formatBytes(bytes) {
  if (!Number.isFinite(bytes)) return "";
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

export { formatBytes };

/**
 * Fill the result section from a 200 body.
 * @param {HTMLElement} root the #result section
 * @param {object} data {analysis, model, image, timings_ms, request_id}
 * @param {{elapsedMs: number, uploadBytes: number, jobId?: string}} info measured by the page
 */
export function renderResult(root, data, info) {
  const a = data.analysis ?? {};
  root.querySelector("#result-location").textContent = text(a.picture_location, "Not identified");
  root.querySelector("#result-date").textContent = text(a.date, "Not identified");
  root.querySelector("#result-translation").textContent = text(
    a.ancient_text_translation,
    "No readable text was found in this picture.",
  );
  root.querySelector("#result-detail").textContent = text(a.interesting_detail, "—");

  const list = root.querySelector("#characters");
  const characters = Array.isArray(a.characters) ? a.characters : [];
  list.replaceChildren(...characters.map(characterCard));
  root.querySelector("#no-characters").hidden = characters.length > 0;

  const parts = [];
  if (typeof data.model === "string" && data.model) parts.push(`Model: ${data.model}`);
  parts.push(`answered in ${(info.elapsedMs / 1000).toFixed(1)} s`);
  if (info.uploadBytes) parts.push(`uploaded ${formatBytes(info.uploadBytes)}`);
  if (info.jobId) parts.push(`job ${info.jobId}`);
  if (typeof data.request_id === "string" && data.request_id) parts.push(`request ${data.request_id}`);
  root.querySelector("#result-meta").textContent = parts.join(" · ");
}
