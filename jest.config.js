// ts-jest in ESM mode: run with NODE_OPTIONS=--experimental-vm-modules (see package.json "test").
export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  roots: ['<rootDir>'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
  testMatch: ['**/*.test.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json', diagnostics: { ignoreCodes: [151001, 151002] } }],
  },
  testTimeout: 30000,
  reporters: ['default', '<rootDir>/testing/summary-reporter.cjs'],
};
