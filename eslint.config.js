import neostandard from 'neostandard'

export default [
  ...neostandard({
    ts: true,
    ignores: ['dist/**', 'node_modules/**', 'bench/peers/**', '.tap/**', 'coverage/**', '.perf-*/**']
  }),
  {
    rules: {
      // `as const` objects share their name with their value type (EventType, OrderStatus): STYLE.md rule 10.
      '@typescript-eslint/no-redeclare': 'off'
    }
  }
]
