// The shape helm/driftwatch/dashboards/driftwatch.json must have, from Grafana's published schema
// (npm @grafana/schema: the classic dashboard model, and each panel plugin's options and field
// config). scripts/check-observability.sh inlines the JSON as an object literal typed
// `DriftwatchDashboard` and runs `tsc --noEmit --strict`: an object literal gets TypeScript's
// excess-property check, so a misspelt key anywhere below fails, as does a wrong type or value.
//
// Two things are ours, not Grafana's schema:
//  - `JsonOf<T>`: JSON carries an enum's value ("palette-classic"), a TypeScript string enum wants
//    its member (FieldColorModeId.PaletteClassic); JsonOf replaces every string enum by the union
//    of its values and leaves everything else as the schema has it.
//  - `PromQuery` and `PromAnnotation`: @grafana/schema ships no type for the Prometheus data
//    source's query (its DataQuery is the common part: refId, hide, queryType, datasource), so the
//    Prometheus fields are declared here, as Grafana's Prometheus data source reads them.
// `_assignable` at the end checks that the refined type still is a Grafana `Dashboard`.

import type { AnnotationQuery, Dashboard, DataQuery, FieldConfigSource, Panel, RowPanel } from '@grafana/schema';
import type * as Heatmap from '@grafana/schema/dist/esm/raw/composable/heatmap/panelcfg/x/HeatmapPanelCfg_types.gen';
import type * as Stat from '@grafana/schema/dist/esm/raw/composable/stat/panelcfg/x/StatPanelCfg_types.gen';
import type * as StateTimeline from '@grafana/schema/dist/esm/raw/composable/statetimeline/panelcfg/x/StateTimelinePanelCfg_types.gen';
import type * as TimeSeries from '@grafana/schema/dist/esm/raw/composable/timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen';

/** T as JSON spells it: string enums become the union of their values, recursively. */
export type JsonOf<T> = T extends string
  ? `${T}`
  : T extends number | boolean | null | undefined
    ? T
    : T extends ReadonlyArray<infer U>
      ? Array<JsonOf<U>>
      : T extends object
        ? { [K in keyof T]: JsonOf<T[K]> }
        : T;

/** A Prometheus query, as the Prometheus data source reads it (a type, not an interface: a
 * panel's targets are Record<string, unknown>, which only type literals are assignable to). */
export type PromQuery = {
  refId: string;
  datasource?: { type: 'prometheus'; uid: string };
  expr: string;
  legendFormat?: string;
  editorMode?: 'code' | 'builder';
  format?: 'time_series' | 'table' | 'heatmap';
  range?: boolean;
  instant?: boolean;
  exemplar?: boolean;
  interval?: string;
  intervalFactor?: number;
  hide?: boolean;
};

/** A Prometheus annotation: the query in `target`, the event's text from its labels. */
export type PromAnnotation = Omit<JsonOf<AnnotationQuery>, 'target' | 'datasource' | 'builtIn' | 'type'> & {
  datasource: { type: 'prometheus'; uid: string };
  target: PromQuery;
  titleFormat?: string;
  textFormat?: string;
  tagKeys?: string;
  useValueForTime?: boolean;
};

type Defaults<Custom> = Omit<JsonOf<FieldConfigSource['defaults']>, 'custom'> & { custom?: JsonOf<Custom> };
type Overrides = JsonOf<FieldConfigSource['overrides']>;

/** A panel of one plugin: its options and its field config's `custom` typed by that plugin's schema. */
type PluginPanel<Type extends string, Options, Custom> = Omit<JsonOf<Panel>, 'type' | 'options' | 'fieldConfig' | 'targets' | 'datasource'> & {
  type: Type;
  datasource: { type: 'prometheus'; uid: string };
  options: JsonOf<Options>;
  fieldConfig: { defaults: Defaults<Custom>; overrides: Overrides };
  targets: PromQuery[];
};

export type TimeSeriesPanel = PluginPanel<'timeseries', TimeSeries.Options, TimeSeries.FieldConfig>;
export type HeatmapPanel = PluginPanel<'heatmap', Heatmap.Options, Heatmap.FieldConfig>;
export type StateTimelinePanel = PluginPanel<'state-timeline', StateTimeline.Options, StateTimeline.FieldConfig>;
export type StatPanel = PluginPanel<'stat', Stat.Options, Record<string, never>>;
export type Row = Omit<JsonOf<RowPanel>, 'panels'> & { type: 'row'; panels: [] };

export type DriftwatchPanel = TimeSeriesPanel | HeatmapPanel | StateTimelinePanel | StatPanel | Row;

export type DriftwatchDashboard = Omit<JsonOf<Dashboard>, 'panels' | 'annotations' | 'schemaVersion'> & {
  /** The dashboard schema of Grafana 12/13 (what @grafana/schema's defaultDashboard carries). */
  schemaVersion: 42;
  panels: DriftwatchPanel[];
  annotations: { list: PromAnnotation[] };
};

// Compile-time only: the refined type is still Grafana's Dashboard, as JSON spells it.
export function _assignable(d: DriftwatchDashboard): JsonOf<Dashboard> {
  return d;
}

// Keep DataQuery referenced: a PromQuery is one.
export function _isDataQuery(q: PromQuery): JsonOf<DataQuery> {
  return q;
}
