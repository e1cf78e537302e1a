/// <reference types="vitest/config" />
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// For `npm run dev`: the API and the WebSocket live on a running `confab serve`
// (CONFAB_ORIGIN, default http://127.0.0.1:8080); proxying keeps them same-origin so the
// HttpOnly session cookies work as they do when confab serves web/dist itself.
const origin = process.env.CONFAB_ORIGIN ?? 'http://127.0.0.1:8080';

export default defineConfig({
  plugins: [react()],
  server: {
    proxy: {
      '/api': { target: origin, changeOrigin: false },
      '/ws': { target: origin, ws: true, changeOrigin: false },
    },
  },
  build: { chunkSizeWarningLimit: 2000 },
  test: {
    environment: 'node',
    include: ['test/**/*.test.ts'],
  },
});
