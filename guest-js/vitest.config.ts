import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    environment: "jsdom",
    include: ["test/**/*.test.ts"],
    // mockIPC installs itself on `window`; every test file starts from a clean page.
    isolate: true,
  },
});
