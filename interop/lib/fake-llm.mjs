// A fake LLM endpoint: answers each POST with OpenAI-style streaming
// chunks (`data: {"choices":[{"delta":{"content":"…"}}]}`), a random
// short pause before each, then `data: [DONE]`, as chat completion APIs
// do with `"stream": true`.
import { createServer } from "node:http";

export function tokens(count) {
  // Words, spaces, punctuation and a few non-ASCII characters, as a model's
  // tokens are.
  const words = ["Hello", ",", " world", "!", " Ça", " va", " 😀", "\n", " résumé", " ok"];
  return Array.from({ length: count }, (_, i) => `${words[i % words.length]}${i}`);
}

export async function startFakeLlm({ count = 150, maxPauseMs = 25 } = {}) {
  const generated = tokens(count);
  const requests = [];
  const server = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (chunk) => (body += chunk));
    req.on("end", async () => {
      requests.push({ method: req.method, url: req.url, headers: req.headers, body });
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
      for (const token of generated) {
        await new Promise((r) => setTimeout(r, Math.floor(Math.random() * (maxPauseMs + 1))));
        if (res.destroyed) return;
        res.write(`data: ${JSON.stringify({ choices: [{ delta: { content: token } }] })}\n\n`);
      }
      res.end("data: [DONE]\n\n");
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}/v1/chat/completions`,
    text: generated.join(""),
    requests,
    close: () => new Promise((r) => server.close(r)),
  };
}
