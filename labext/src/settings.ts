// The `medai-lab:plugin` settings (schema/plugin.json), with defaults when no registry is there.
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { Signal } from '@lumino/signaling';

import { PLUGIN_ID } from './api';

export const PRESETS = ['auto', 'lung', 'mediastinum', 'liver', 'bone'] as const;

export class Settings {
  defaultPreset = 'auto';
  trackingUri = '';
  gpuRefreshSeconds = 5;
  readonly changed = new Signal<Settings, void>(this);

  /** Load and follow the user's settings; never throws (defaults stay on failure). */
  async load(registry: ISettingRegistry | null): Promise<void> {
    if (!registry) {
      return;
    }
    try {
      const s = await registry.load(PLUGIN_ID);
      this.apply(s);
      s.changed.connect(() => this.apply(s));
    } catch (err) {
      console.warn('[medai-lab] settings not loaded, using defaults:', err);
    }
  }

  private apply(s: ISettingRegistry.ISettings): void {
    const preset = String(s.get('defaultPreset').composite ?? 'auto');
    this.defaultPreset = (PRESETS as readonly string[]).includes(preset) ? preset : 'auto';
    this.trackingUri = String(s.get('trackingUri').composite ?? '');
    const secs = Number(s.get('gpuRefreshSeconds').composite);
    this.gpuRefreshSeconds = isFinite(secs) && secs >= 1 ? secs : 5;
    this.changed.emit();
  }
}
