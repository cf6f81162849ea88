/*
 * Luster direct upload: send one photo straight to storage, then ask the API to verify it.
 *
 *   const presign = await (await fetch("/api/uploads/presign", {method: "POST", headers, body})).json();
 *   const asset = await lusterDirectUpload({
 *     file,                                  // a File from a picker or a drop
 *     presign,                               // the answer of POST /api/uploads/presign
 *     token,                                 // the bearer token
 *     onProgress: (loaded, total) => {...},  // optional: bytes sent so far
 *     apiBase: "",                           // optional: the API's origin (default: this page's)
 *   });
 *
 * Resolves with the answer of POST /api/uploads/{asset_id}/complete (the asset, `ready`,
 * with its thumb_url). Rejects with an Error whose message can be shown to the user and whose
 * `status` is the HTTP status (413 too big, 422 not a readable photo, 0 network failure).
 * Uploads with XMLHttpRequest because fetch() cannot report upload progress.
 */
(function (global) {
  "use strict";

  function failure(message, status) {
    const error = new Error(message);
    error.status = status;
    return error;
  }

  function storageFailure(xhr) {
    try {
      const detail = JSON.parse(xhr.responseText).detail;
      if (detail) return failure(detail, xhr.status);
    } catch (_) { /* S3 answers in XML */ }
    if (xhr.status === 413 || /EntityTooLarge/.test(xhr.responseText)) return failure("The file is too large.", 413);
    if (xhr.status === 403) return failure("The upload link expired; please try again.", 403);
    return failure(`The upload failed (${xhr.status}).`, xhr.status);
  }

  function send(file, upload, onProgress) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open(upload.method, upload.url);
      let body = file;
      if (upload.method === "POST") {
        body = new FormData();
        Object.entries(upload.fields || {}).forEach(([name, value]) => body.append(name, value));
        body.append("file", file); // S3 reads the fields before the file: it must come last
      } else {
        Object.entries(upload.headers || {}).forEach(([name, value]) => xhr.setRequestHeader(name, value));
      }
      if (onProgress) {
        xhr.upload.onprogress = (event) => onProgress(event.loaded, event.lengthComputable ? event.total : file.size);
      }
      xhr.onload = () => (xhr.status >= 200 && xhr.status < 300 ? resolve() : reject(storageFailure(xhr)));
      xhr.onerror = () => reject(failure("The upload failed: check the connection and try again.", 0));
      xhr.onabort = () => reject(failure("The upload was cancelled.", 0));
      xhr.send(body);
    });
  }

  // A server busy checking other photos answers 503 (or 429) with Retry-After: wait, ask again.
  const BUSY_TRIES = 6;

  async function complete(apiBase, assetId, token) {
    for (let attempt = 1; ; attempt += 1) {
      const response = await fetch(`${apiBase}/api/uploads/${assetId}/complete`, {
        method: "POST",
        headers: { Authorization: `Bearer ${token}` },
      });
      const answer = await response.json().catch(() => ({}));
      if ((response.status === 503 || response.status === 429) && attempt < BUSY_TRIES) {
        const seconds = Number(response.headers.get("Retry-After")) || 5;
        await new Promise((resolve) => setTimeout(resolve, Math.min(seconds, 60) * 1000));
        continue;
      }
      if (!response.ok) throw failure(answer.detail || `The photo could not be checked (${response.status}).`, response.status);
      return answer;
    }
  }

  global.lusterDirectUpload = async function ({ file, presign, token, onProgress, apiBase = "" }) {
    await send(file, presign.upload, onProgress);
    return complete(apiBase, presign.asset_id, token);
  };

  /*
   * The shoot page's upload queue. Reflex starts it with rx.call_script and follows it by
   * awaiting changed() in a call_script callback loop; rows are plain JSON for the page state:
   * {key, name, size, loaded, state: queued|uploading|checking|done|failed|duplicate, error, shoot,
   * retryable (a failure another try may fix)}.
   *
   * Each file keeps the shoot it was queued for, and the session (user) it was queued under:
   * opening another shoot and queueing more files there sends no earlier file to it. The page
   * hands over a fresh access token of that user whenever it follows the queue (start, insist,
   * retry, changed), well before the old one expires, so a long queue outlasts any one token.
   */
  const PARALLEL = 3;
  const rows = [];
  const files = new Map();
  const sessions = new Map(); // the token's subject (user id) -> {token}: the newest token for that user
  let version = 0;
  let seen = -1;

  function subjectOf(token) {
    try {
      const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      return JSON.parse(atob(payload)).sub || token;
    } catch (_) {
      return token; // not a JWT: a session of its own
    }
  }

  /* The session object for this token's user, now holding this (newer) token. */
  function session(bearer) {
    const subject = subjectOf(bearer || "");
    const found = sessions.get(subject) || {};
    if (bearer) found.token = bearer;
    sessions.set(subject, found);
    return found;
  }

  function active(row) {
    return row.state === "queued" || row.state === "uploading" || row.state === "checking";
  }

  function update(row, changes) {
    Object.assign(row, changes);
    version += 1;
  }

  async function presign(row, allowDuplicate) {
    const file = files.get(row.key);
    const response = await fetch("/api/uploads/presign", {
      method: "POST",
      headers: { Authorization: `Bearer ${row.session.token}`, "Content-Type": "application/json" },
      body: JSON.stringify({
        shoot_id: row.shoot, filename: file.name, content_type: file.type, size: file.size, allow_duplicate: allowDuplicate,
      }),
    });
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) throw failure(answer.detail || `The upload could not start (${response.status}).`, response.status);
    return answer;
  }

  /* The photo a failed try left pending would count as this same file already in the shoot. */
  async function dropFailedTry(row) {
    const assetId = row.failedAssetId;
    row.failedAssetId = "";
    await fetch(`/api/assets/${assetId}`, { method: "DELETE", headers: { Authorization: `Bearer ${row.session.token}` } })
      .catch(() => null); // if it stays, the server calls the retry a duplicate and "Upload anyway" remains
  }

  async function run(row) {
    const file = files.get(row.key);
    update(row, { state: "uploading", loaded: 0, error: "" });
    try {
      if (row.failedAssetId) await dropFailedTry(row);
      row.assetId = "";
      const answer = await presign(row, row.allowDuplicate);
      row.assetId = answer.asset_id;
      const onProgress = (loaded) => update(row, { loaded: Math.min(loaded, row.size) });
      await send(file, answer.upload, onProgress);
      update(row, { state: "checking", loaded: row.size });
      await complete("", answer.asset_id, row.session.token);
      update(row, { state: "done" });
      files.delete(row.key);
    } catch (error) {
      // Too large, not a photo, not accepted: the same file would fail again, so no Retry.
      const retryable = ![409, 413, 415, 422].includes(error.status);
      update(row, { state: error.status === 409 ? "duplicate" : "failed", error: error.message, retryable });
    }
    pump();
  }

  function pump() {
    const running = rows.filter((row) => row.state === "uploading" || row.state === "checking").length;
    rows.filter((row) => row.state === "queued").slice(0, Math.max(0, PARALLEL - running)).forEach(run);
  }

  function snapshot() {
    return rows.map(({ key, name, size, loaded, state, error, shoot, retryable }) => ({
      key, name, size, loaded, state, error, shoot, retryable: Boolean(retryable),
    }));
  }

  function requeue(key, bearer, fromStates, changes) {
    if (bearer) session(bearer);
    const row = rows.find((r) => r.key === key && fromStates.includes(r.state));
    if (row) update(row, { state: "queued", error: "", ...changes });
    pump();
    return snapshot();
  }

  global.lusterUploads = {
    /* Queue the files chosen in the <input type=file> with this id (or dropped onto its zone) for this shoot. */
    start({ inputId, shoot, bearer }) {
      const owner = session(bearer);
      const input = document.getElementById(inputId);
      Array.from((input && input.files) || []).forEach((file) => {
        const key = `${Date.now()}-${rows.length}`;
        files.set(key, file);
        rows.push({
          key, name: file.name, size: file.size, loaded: 0, state: "queued", error: "", allowDuplicate: false,
          shoot, session: owner,
        });
      });
      if (input) input.value = ""; // choosing the same file again must fire "change" again
      version += 1;
      pump();
      return snapshot();
    },
    /* Upload a file the server said is already in the shoot, because the photographer insists. */
    insist({ key, bearer }) {
      return requeue(key, bearer, ["duplicate"], { allowDuplicate: true });
    },
    /* Try a failed file again (same shoot, the session's newest token). */
    retry({ key, bearer }) {
      const row = rows.find((r) => r.key === key && r.state === "failed");
      return requeue(key, bearer, ["failed"], { failedAssetId: (row && row.assetId) || "" });
    },
    /* Forget finished and failed rows. */
    clear() {
      for (let i = rows.length - 1; i >= 0; i -= 1) {
        if (["done", "failed", "duplicate"].includes(rows[i].state)) files.delete(rows.splice(i, 1)[0].key);
      }
      version += 1;
      return snapshot();
    },
    /* Resolves with the rows once something changed (checked a few times a second); `bearer`:
     * a fresh token of the signed-in user, used from now on by their files still to go. */
    changed({ bearer } = {}) {
      if (bearer) session(bearer);
      return new Promise((resolve) => {
        const check = () => {
          if (version !== seen) {
            seen = version;
            resolve(snapshot());
          } else setTimeout(check, 250);
        };
        setTimeout(check, 250);
      });
    },
    /* How many files are still on their way. */
    inFlight() {
      return rows.filter(active).length;
    },
  };

  /* Leaving the page (closing the tab, reloading, another site) would drop the files still on
   * their way: the browser asks first. Moving between the app's pages keeps the queue going. */
  global.addEventListener("beforeunload", (event) => {
    if (!rows.some(active)) return;
    event.preventDefault();
    event.returnValue = ""; // older browsers show the prompt only when this is set
  });

  /* Files dropped on an element marked data-upload-input="<input id>" go to that input. */
  document.addEventListener("dragover", (event) => {
    if (event.target.closest && event.target.closest("[data-upload-input]")) event.preventDefault();
  });
  document.addEventListener("drop", (event) => {
    const zone = event.target.closest && event.target.closest("[data-upload-input]");
    const input = zone && document.getElementById(zone.dataset.uploadInput);
    if (!input || !event.dataTransfer || !event.dataTransfer.files.length) return;
    event.preventDefault();
    input.files = event.dataTransfer.files;
    input.dispatchEvent(new Event("change", { bubbles: true }));
  });
})(window);
