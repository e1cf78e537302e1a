// The design system: Chakra's defaults plus Confab's brand palette and fonts.
//
// Components pick colours through semantic tokens (`bg.panel`, `fg.muted`, `border`,
// `colorPalette.solid`…), which resolve per colour mode, so no component asks which mode is on.
import { createSystem, defaultConfig, defineConfig } from '@chakra-ui/react';

const config = defineConfig({
  globalCss: {
    'html, body, #root': { height: '100%' },
  },
  theme: {
    tokens: {
      colors: {
        brand: {
          50: { value: '#e6f6ff' },
          100: { value: '#bae3ff' },
          200: { value: '#7cc4fa' },
          300: { value: '#47a3f3' },
          400: { value: '#2186eb' },
          500: { value: '#0967d2' },
          600: { value: '#0552b5' },
          700: { value: '#03449e' },
          800: { value: '#01337d' },
          900: { value: '#002159' },
          950: { value: '#001540' },
        },
      },
      fonts: {
        heading: { value: 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif' },
        body: { value: 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif' },
      },
    },
    semanticTokens: {
      colors: {
        // Behind the conversation: a shade off the panels (header, sidebar, cards) around it.
        bg: {
          canvas: { value: { _light: '{colors.gray.50}', _dark: '{colors.black}' } },
        },
        // The keys every palette has, so `colorPalette="brand"` works on any component.
        brand: {
          solid: { value: '{colors.brand.500}' },
          contrast: { value: 'white' },
          fg: { value: { _light: '{colors.brand.600}', _dark: '{colors.brand.200}' } },
          muted: { value: { _light: '{colors.brand.100}', _dark: '{colors.brand.800}' } },
          subtle: { value: { _light: '{colors.brand.50}', _dark: '{colors.brand.900}' } },
          emphasized: { value: { _light: '{colors.brand.200}', _dark: '{colors.brand.700}' } },
          focusRing: { value: { _light: '{colors.brand.500}', _dark: '{colors.brand.400}' } },
          border: { value: { _light: '{colors.brand.300}', _dark: '{colors.brand.500}' } },
        },
        // Gray is the default palette: its focus ring is the brand colour, so inputs, buttons
        // and menu items all show the same ring.
        gray: {
          focusRing: { value: { _light: '{colors.brand.500}', _dark: '{colors.brand.400}' } },
        },
      },
    },
  },
});

export const system = createSystem(defaultConfig, config);
