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

  async function complete(apiBase, assetId, token) {
    const response = await fetch(`${apiBase}/api/uploads/${assetId}/complete`, {
      method: "POST",
      headers: { Authorization: `Bearer ${token}` },
    });
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) throw failure(answer.detail || `The photo could not be checked (${response.status}).`, response.status);
    return answer;
  }

  global.lusterDirectUpload = async function ({ file, presign, token, onProgress, apiBase = "" }) {
    await send(file, presign.upload, onProgress);
    return complete(apiBase, presign.asset_id, token);
  };
})(window);
