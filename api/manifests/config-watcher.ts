// Watches a config folder and reloads it after changes settle, so local mode enforces an edited
// policy within a second. A reload that fails to load is reported and the last good config kept.
import { watch, type FSWatcher } from 'node:fs';
import { loadConfigDir, type GatehouseConfig } from './config.js';

export interface ConfigWatcher {
  close(): void;
}

export interface ConfigWatcherOptions {
  readonly dir: string;
  /** Quiet time after the last change before reloading; editors write files in several steps. */
  readonly debounceMs?: number;
  readonly onConfig: (config: GatehouseConfig) => void;
  readonly onError: (error: unknown) => void;
}

export function watchConfigDir(options: ConfigWatcherOptions): ConfigWatcher {
  const debounceMs = options.debounceMs ?? 150;
  let timer: NodeJS.Timeout | undefined;
  let loading = Promise.resolve();
  const reload = () => {
    loading = loading.then(() => loadConfigDir(options.dir).then(options.onConfig, options.onError));
  };
  const watcher: FSWatcher = watch(options.dir, { recursive: true }, () => {
    clearTimeout(timer);
    timer = setTimeout(reload, debounceMs);
  });
  watcher.on('error', options.onError);
  return {
    close() {
      clearTimeout(timer);
      watcher.close();
    },
  };
}
