// The catalog of functions the classifier knows: what calling each one does. Built-ins that only
// compute or read are `read`; the ones with side effects are what they do (nextval writes a
// sequence, pg_terminate_backend is admin). Anything not listed is a user function we cannot see
// into, so it is a `call` (fail closed: a policy that allows reads must not allow an unknown body).

import { strictest, type QualifiedName, type SqlOperation } from './operations.js';
import { asList, constantString, qualifiedName, stringItems, type PgRecord } from './parse-tree.js';

/** What calling a function does, and to which relation when the call names one (nextval('s')). */
export interface FunctionEffect {
  readonly operation: SqlOperation;
  readonly relation?: QualifiedName;
}

/**
 * Built-ins that compute or read and change nothing, by theme. Only their unqualified or
 * `pg_catalog.` spelling counts: pg_catalog is searched first, so an unqualified `lower` is the
 * built-in, while `app.lower` is someone's own function.
 */
const READ_ONLY_THEMES: Readonly<Record<string, readonly string[]>> = {
  aggregates: [
    'any_value', 'array_agg', 'avg', 'bit_and', 'bit_or', 'bit_xor', 'bool_and', 'bool_or', 'count', 'every',
    'max', 'min', 'string_agg', 'sum', 'json_agg', 'json_agg_strict', 'json_object_agg', 'json_object_agg_strict',
    'json_object_agg_unique', 'json_object_agg_unique_strict', 'jsonb_agg', 'jsonb_agg_strict', 'jsonb_object_agg',
    'jsonb_object_agg_strict', 'jsonb_object_agg_unique', 'jsonb_object_agg_unique_strict', 'range_agg',
    'range_intersect_agg', 'xmlagg', 'corr', 'covar_pop', 'covar_samp', 'regr_avgx', 'regr_avgy', 'regr_count',
    'regr_intercept', 'regr_r2', 'regr_slope', 'regr_sxx', 'regr_sxy', 'regr_syy', 'stddev', 'stddev_pop',
    'stddev_samp', 'variance', 'var_pop', 'var_samp', 'mode', 'percentile_cont', 'percentile_disc',
  ],
  window: [
    'row_number', 'rank', 'dense_rank', 'percent_rank', 'cume_dist', 'ntile', 'lag', 'lead', 'first_value',
    'last_value', 'nth_value',
  ],
  math: [
    'abs', 'cbrt', 'ceil', 'ceiling', 'degrees', 'div', 'exp', 'factorial', 'floor', 'gcd', 'lcm', 'ln', 'log',
    'log10', 'min_scale', 'mod', 'pi', 'power', 'pow', 'radians', 'round', 'scale', 'sign', 'sqrt', 'trim_scale',
    'trunc', 'width_bucket', 'random', 'random_normal', 'acos', 'acosd', 'acosh', 'asin', 'asind', 'asinh', 'atan',
    'atan2', 'atan2d', 'atand', 'atanh', 'cos', 'cosd', 'cosh', 'cot', 'cotd', 'sin', 'sind', 'sinh', 'tan', 'tand',
    'tanh', 'erf', 'erfc', 'to_bin', 'to_oct', 'to_hex',
  ],
  casts: [
    'bool', 'int2', 'int4', 'int8', 'float4', 'float8', 'numeric', 'text', 'varchar', 'bpchar', 'name', 'date',
    'time', 'timetz', 'timestamp', 'timestamptz', 'interval', 'cidr', 'macaddr', 'macaddr8', 'money',
    'oid', 'regclass', 'xml', 'bit', 'varbit', 'char',
  ],
  strings: [
    'ascii', 'bit_length', 'btrim', 'char_length', 'character_length', 'chr', 'concat', 'concat_ws', 'convert',
    'convert_from', 'convert_to', 'decode', 'encode', 'format', 'initcap', 'left', 'length', 'lower', 'lpad',
    'ltrim', 'md5', 'normalize', 'is_normalized', 'octet_length', 'overlay', 'parse_ident', 'position',
    'quote_ident', 'quote_literal', 'quote_nullable', 'regexp_count', 'regexp_instr', 'regexp_like', 'regexp_match',
    'regexp_matches', 'regexp_replace', 'regexp_split_to_array', 'regexp_split_to_table', 'regexp_substr', 'repeat',
    'replace', 'reverse', 'right', 'rpad', 'rtrim', 'split_part', 'starts_with', 'string_to_array',
    'string_to_table', 'strpos', 'substr', 'substring', 'to_ascii', 'translate', 'unistr', 'upper', 'textcat',
    'sha224', 'sha256', 'sha384', 'sha512', 'get_bit', 'get_byte', 'set_bit', 'set_byte', 'bit_count', 'to_char',
    'to_number', 'similar_to_escape', 'similar_escape', 'unicode_assigned', 'like_escape', 'cash_words', 'crc32',
    'crc32c', 'casefold',
  ],
  dateTime: [
    'age', 'clock_timestamp', 'date_add', 'date_bin', 'date_part', 'date_subtract', 'date_trunc', 'extract',
    'isfinite', 'justify_days', 'justify_hours', 'justify_interval', 'make_date', 'make_interval', 'make_time',
    'make_timestamp', 'make_timestamptz', 'now', 'statement_timestamp', 'timeofday', 'transaction_timestamp',
    'to_date', 'to_timestamp', 'timezone', 'overlaps', 'pg_sleep', 'pg_sleep_for', 'pg_sleep_until',
  ],
  json: [
    'array_to_json', 'json_array_elements', 'json_array_elements_text', 'json_array_length', 'json_build_array',
    'json_build_object', 'json_each', 'json_each_text', 'json_extract_path', 'json_extract_path_text', 'json_object',
    'json_object_keys', 'json_populate_record', 'json_populate_recordset', 'json_strip_nulls', 'json_to_record',
    'json_to_recordset', 'json_typeof', 'json_object_field', 'json_object_field_text', 'json_array_element',
    'json_array_element_text', 'jsonb_array_elements', 'jsonb_array_elements_text', 'jsonb_array_length',
    'jsonb_build_array', 'jsonb_build_object', 'jsonb_each', 'jsonb_each_text', 'jsonb_extract_path',
    'jsonb_extract_path_text', 'jsonb_insert', 'jsonb_object', 'jsonb_object_keys', 'jsonb_path_exists',
    'jsonb_path_exists_tz', 'jsonb_path_match', 'jsonb_path_match_tz', 'jsonb_path_query', 'jsonb_path_query_tz',
    'jsonb_path_query_array', 'jsonb_path_query_array_tz', 'jsonb_path_query_first', 'jsonb_path_query_first_tz',
    'jsonb_populate_record', 'jsonb_populate_record_valid', 'jsonb_populate_recordset', 'jsonb_pretty', 'jsonb_set',
    'jsonb_set_lax', 'jsonb_strip_nulls', 'jsonb_to_record', 'jsonb_to_recordset', 'jsonb_typeof', 'jsonb_concat',
    'jsonb_delete', 'jsonb_delete_path', 'jsonb_exists', 'jsonb_exists_any', 'jsonb_exists_all', 'jsonb_contains',
    'jsonb_contained', 'jsonb_object_field', 'jsonb_object_field_text', 'jsonb_array_element',
    'jsonb_array_element_text', 'row_to_json', 'to_json', 'to_jsonb',
  ],
  arrays: [
    'array_append', 'array_cat', 'array_dims', 'array_fill', 'array_length', 'array_lower', 'array_ndims',
    'array_position', 'array_positions', 'array_prepend', 'array_remove', 'array_replace', 'array_reverse',
    'array_sample', 'array_shuffle', 'array_sort', 'array_to_string', 'array_upper', 'cardinality',
    'generate_subscripts', 'trim_array', 'unnest', 'generate_series',
  ],
  ranges: [
    'upper', 'isempty', 'lower_inc', 'upper_inc', 'lower_inf', 'upper_inf', 'range_merge', 'multirange',
    'daterange', 'int4range', 'int8range', 'numrange', 'tsrange', 'tstzrange', 'datemultirange', 'int4multirange',
    'int8multirange', 'nummultirange', 'tsmultirange', 'tstzmultirange',
  ],
  network: [
    'abbrev', 'broadcast', 'family', 'host', 'hostmask', 'inet_merge', 'inet_same_family', 'masklen', 'netmask',
    'network', 'set_masklen', 'inet_client_addr', 'inet_client_port', 'inet_server_addr', 'inet_server_port',
    'macaddr8_set7bit',
  ],
  geometry: [
    'area', 'center', 'diagonal', 'diameter', 'height', 'width', 'isclosed', 'isopen', 'npoints', 'pclose', 'popen',
    'radius', 'slope', 'box', 'circle', 'line', 'lseg', 'path', 'point', 'polygon', 'bound_box',
  ],
  textSearch: [
    'to_tsvector', 'to_tsquery', 'plainto_tsquery', 'phraseto_tsquery', 'websearch_to_tsquery', 'ts_headline',
    'ts_rank', 'ts_rank_cd', 'setweight', 'strip', 'numnode', 'querytree', 'ts_delete', 'ts_filter', 'ts_debug',
    'ts_lexize', 'ts_parse', 'ts_token_type', 'tsvector_to_array', 'tsquery_phrase', 'get_current_ts_config',
    'array_to_tsvector', 'json_to_tsvector', 'jsonb_to_tsvector',
  ],
  xml: [
    'xmlcomment', 'xmltext', 'xpath', 'xpath_exists', 'xml_is_well_formed', 'xml_is_well_formed_content',
    'xml_is_well_formed_document', 'xmlexists', 'table_to_xml', 'table_to_xmlschema', 'table_to_xml_and_xmlschema',
    'schema_to_xml', 'schema_to_xmlschema', 'schema_to_xml_and_xmlschema', 'database_to_xml', 'database_to_xmlschema',
    'database_to_xml_and_xmlschema', 'cursor_to_xml', 'cursor_to_xmlschema',
  ],
  uuid: ['gen_random_uuid', 'uuidv4', 'uuidv7', 'uuid_extract_version', 'uuid_extract_timestamp'],
  sessionInfo: [
    'current_database', 'current_schema', 'current_schemas', 'current_setting', 'current_query', 'current_user',
    'session_user', 'getpgusername', 'version', 'pg_backend_pid', 'pg_blocking_pids',
    'pg_safe_snapshot_blocking_pids', 'pg_conf_load_time', 'pg_postmaster_start_time', 'pg_current_logfile',
    'pg_is_in_recovery', 'pg_is_wal_replay_paused', 'pg_get_wal_replay_pause_state', 'pg_jit_available',
    'pg_listening_channels', 'pg_my_temp_schema', 'pg_is_other_temp_schema', 'pg_notification_queue_usage',
    'pg_trigger_depth', 'pg_typeof', 'pg_column_size', 'pg_column_compression', 'pg_column_toast_chunk_id',
    'pg_collation_for', 'pg_encoding_to_char', 'pg_char_to_encoding', 'pg_client_encoding', 'getdatabaseencoding',
    'pg_encoding_max_length', 'pg_config', 'pg_control_checkpoint', 'pg_control_init', 'pg_control_recovery',
    'pg_control_system', 'pg_get_backend_memory_contexts', 'pg_get_shmem_allocations', 'pg_lock_status',
    'pg_prepared_statement', 'pg_prepared_xact', 'pg_cursor', 'pg_has_role', 'row_security_active',
    'pg_input_is_valid', 'pg_input_error_info', 'num_nonnulls', 'num_nulls', 'pg_export_snapshot',
  ],
  catalogInfo: [
    'pg_size_pretty', 'pg_size_bytes', 'pg_database_size', 'pg_relation_size', 'pg_table_size', 'pg_indexes_size',
    'pg_total_relation_size', 'pg_tablespace_size', 'pg_relation_filenode', 'pg_relation_filepath',
    'pg_filenode_relation', 'pg_tablespace_location', 'pg_tablespace_databases', 'pg_partition_tree',
    'pg_partition_ancestors', 'pg_partition_root', 'pg_describe_object', 'pg_identify_object',
    'pg_identify_object_as_address', 'pg_get_object_address', 'pg_get_constraintdef', 'pg_get_expr',
    'pg_get_functiondef', 'pg_get_function_arguments', 'pg_get_function_identity_arguments',
    'pg_get_function_result', 'pg_get_function_arg_default', 'pg_get_function_sqlbody', 'pg_get_indexdef',
    'pg_get_keywords', 'pg_get_partkeydef', 'pg_get_partition_constraintdef', 'pg_get_ruledef',
    'pg_get_serial_sequence', 'pg_get_statisticsobjdef', 'pg_get_statisticsobjdef_columns',
    'pg_get_statisticsobjdef_expressions', 'pg_get_triggerdef', 'pg_get_userbyid', 'pg_get_viewdef',
    'pg_get_replica_identity_index', 'pg_get_catalog_foreign_keys', 'pg_options_to_table', 'pg_settings_get_flags',
    'pg_show_all_settings', 'pg_timezone_abbrevs', 'pg_timezone_names', 'pg_available_extensions',
    'pg_available_extension_versions', 'pg_extension_update_paths', 'pg_get_replication_slots',
    'pg_get_publication_tables', 'pg_column_is_updatable', 'pg_relation_is_updatable', 'pg_relation_is_publishable',
    'pg_index_column_has_property', 'pg_index_has_property', 'pg_indexam_has_property', 'pg_sequence_parameters',
    'pg_sequence_last_value', 'pg_mcv_list_items', 'acldefault', 'aclexplode', 'makeaclitem', 'format_type',
    'col_description', 'obj_description', 'shobj_description', 'pg_basetype', 'pg_get_wal_resource_managers',
    'pg_walfile_name', 'pg_walfile_name_offset', 'pg_split_walfile_name', 'pg_wal_lsn_diff', 'pg_current_wal_lsn',
    'pg_current_wal_flush_lsn', 'pg_current_wal_insert_lsn', 'pg_last_wal_receive_lsn', 'pg_last_wal_replay_lsn',
    'pg_last_xact_replay_timestamp', 'pg_last_committed_xact', 'pg_xact_commit_timestamp',
    'pg_xact_commit_timestamp_origin', 'pg_xact_status', 'pg_get_multixact_members', 'pg_collation_actual_version',
    'pg_database_collation_actual_version', 'pg_replication_origin_oid', 'pg_replication_origin_progress',
    'pg_replication_origin_session_is_setup', 'pg_replication_origin_session_progress',
    'pg_show_replication_origin_status', 'pg_stat_have_stats', 'satisfies_hash_partition', 'mxid_age',
  ],
  transactionIds: [
    'txid_current', 'txid_current_if_assigned', 'txid_current_snapshot', 'txid_snapshot_xip', 'txid_snapshot_xmax',
    'txid_snapshot_xmin', 'txid_visible_in_snapshot', 'txid_status', 'pg_current_xact_id',
    'pg_current_xact_id_if_assigned', 'pg_current_snapshot', 'pg_snapshot_xip', 'pg_snapshot_xmax',
    'pg_snapshot_xmin', 'pg_visible_in_snapshot',
  ],
  largeObjectReads: ['lo_get', 'loread', 'lo_open', 'lo_lseek', 'lo_lseek64', 'lo_tell', 'lo_tell64', 'lo_close'],
  sequenceReads: ['currval', 'lastval'],
};

/** Built-ins with side effects, by what they do. */
const SIDE_EFFECTS: Readonly<Partial<Record<SqlOperation, readonly string[]>>> = {
  write: [
    'nextval', 'setval', 'pg_notify',
    'lo_creat', 'lo_create', 'lo_from_bytea', 'lo_put', 'lowrite', 'lo_truncate', 'lo_truncate64', 'lo_unlink',
  ],
  session: [
    'pg_advisory_lock', 'pg_advisory_lock_shared', 'pg_advisory_unlock', 'pg_advisory_unlock_all',
    'pg_advisory_unlock_shared', 'pg_advisory_xact_lock', 'pg_advisory_xact_lock_shared', 'pg_try_advisory_lock',
    'pg_try_advisory_lock_shared', 'pg_try_advisory_xact_lock', 'pg_try_advisory_xact_lock_shared',
    // Both only change this session's state: the random seed, the statistics snapshot.
    'setseed', 'pg_stat_clear_snapshot', 'pg_stat_force_next_flush',
  ],
  // Creates collations in pg_catalog.
  ddl: ['pg_import_system_collations'],
  admin: [
    // Server files: reading them exposes configuration and secrets, writing them is code execution.
    'pg_read_file', 'pg_read_file_old', 'pg_read_binary_file', 'pg_stat_file', 'pg_hba_file_rules',
    'pg_ident_file_mappings', 'pg_show_all_file_settings', 'lo_import', 'lo_export',
    'pg_file_write', 'pg_file_rename', 'pg_file_unlink', 'pg_file_sync', 'pg_logdir_ls',
    // Other sessions and the server process itself.
    'pg_terminate_backend', 'pg_cancel_backend', 'pg_reload_conf', 'pg_rotate_logfile', 'pg_rotate_logfile_old',
    'pg_log_backend_memory_contexts', 'pg_switch_wal', 'pg_promote', 'pg_create_restore_point', 'pg_backup_start',
    'pg_backup_stop', 'pg_start_backup', 'pg_stop_backup', 'pg_wal_replay_pause', 'pg_wal_replay_resume',
    'pg_log_standby_snapshot', 'pg_nextoid', 'pg_stop_making_pinned_objects', 'pg_extension_config_dump',
    // Replication: slots and origins steer what leaves the server, and decoding reads every table.
    'pg_create_physical_replication_slot', 'pg_create_logical_replication_slot', 'pg_drop_replication_slot',
    'pg_copy_physical_replication_slot', 'pg_copy_logical_replication_slot', 'pg_replication_slot_advance',
    'pg_logical_slot_get_changes', 'pg_logical_slot_get_binary_changes', 'pg_logical_slot_peek_changes',
    'pg_logical_slot_peek_binary_changes', 'pg_logical_emit_message', 'pg_sync_replication_slots',
    'pg_replication_origin_create', 'pg_replication_origin_drop', 'pg_replication_origin_advance',
    'pg_replication_origin_session_setup', 'pg_replication_origin_session_reset', 'pg_replication_origin_xact_setup',
    'pg_replication_origin_xact_reset',
    // Maintenance, like VACUUM.
    'brin_summarize_range', 'brin_summarize_new_values', 'brin_desummarize_range', 'gin_clean_pending_list',
  ],
};

/** Families recognised by prefix, checked in order after the exact names. */
const PREFIX_RULES: readonly { readonly prefix: string; readonly operation: SqlOperation }[] = [
  // dblink opens connections to other servers with credentials of its own: a way around the sidecar.
  { prefix: 'dblink', operation: 'admin' },
  { prefix: 'binary_upgrade_', operation: 'admin' },
  { prefix: 'pg_stat_reset', operation: 'admin' },
  { prefix: 'pg_ls_', operation: 'admin' },
  { prefix: 'pg_stat_get_', operation: 'read' },
  { prefix: 'pg_event_trigger_', operation: 'read' },
  { prefix: 'to_reg', operation: 'read' },
];

/** Families recognised by both ends: has_table_privilege, pg_table_is_visible and their kin. */
const AFFIX_RULES: readonly { readonly prefix: string; readonly suffix: string; readonly operation: SqlOperation }[] = [
  { prefix: 'has_', suffix: '_privilege', operation: 'read' },
  { prefix: 'pg_', suffix: '_is_visible', operation: 'read' },
];

/** Functions whose first argument names the sequence they act on. */
const SEQUENCE_ARGUMENT_FUNCTIONS: ReadonlySet<string> = new Set(['nextval', 'setval', 'currval']);

/** Settings whose change swaps the identity the session acts as, or switches off integrity checks. */
// Identity switches, and settings that change how the server reads statement text (a proxy that
// parses with the defaults would then read a statement differently from the server that runs it).
const PRIVILEGED_SETTINGS: ReadonlySet<string> = new Set([
  'role',
  'session_authorization',
  'session_replication_role',
  'standard_conforming_strings',
  'backslash_quote',
  'client_encoding',
]);

const CATALOG: ReadonlyMap<string, SqlOperation> = buildCatalog();

function buildCatalog(): Map<string, SqlOperation> {
  const catalog = new Map<string, SqlOperation>();
  for (const names of Object.values(READ_ONLY_THEMES)) for (const name of names) catalog.set(name, 'read');
  for (const [operation, names] of Object.entries(SIDE_EFFECTS) as [SqlOperation, readonly string[]][]) {
    for (const name of names) catalog.set(name, operation);
  }
  return catalog;
}

/** True when a setting's change is an `admin` act rather than ordinary session state. */
export function isPrivilegedSetting(name: string): boolean {
  return PRIVILEGED_SETTINGS.has(name.toLowerCase());
}

/** The operation the catalog records for a bare function name; undefined when unknown. */
export function knownFunctionOperation(name: string): SqlOperation | undefined {
  const lower = name.toLowerCase();
  const exact = CATALOG.get(lower);
  if (exact !== undefined) return exact;
  const byPrefix = PREFIX_RULES.find((rule) => lower.startsWith(rule.prefix));
  if (byPrefix !== undefined) return byPrefix.operation;
  const byAffix = AFFIX_RULES.find((rule) => lower.startsWith(rule.prefix) && lower.endsWith(rule.suffix));
  return byAffix?.operation;
}

/**
 * What a call does. `constantArguments` holds each argument's value when it is a string constant
 * (undefined otherwise), so calls like nextval('orders_id_seq') and set_config('role', ...) can be
 * judged by what they name.
 */
export function classifyFunctionCall(
  name: QualifiedName,
  constantArguments: readonly (string | undefined)[],
): FunctionEffect {
  const builtin = builtinEffect(name.name.toLowerCase(), constantArguments);
  if (isBuiltinSpelling(name)) return builtin ?? { operation: 'call' };
  // Anything else is the user's own function, even when it shares a built-in's name; the name can
  // only make it stricter (app.dblink_exec is still admin), never let it pass as a read.
  const operation = strictest(builtin === undefined ? ['call'] : ['call', builtin.operation]) ?? 'call';
  return { operation };
}

/** The function a FuncCall node names, as written. */
export function calledFunction(call: PgRecord): QualifiedName | undefined {
  const parts = stringItems(call.funcname);
  // EXTRACT(...), TRIM(...) and other SQL-syntax calls come back as pg_catalog.x; they were written unqualified.
  const sqlSyntax = call.funcformat === 'COERCE_SQL_SYNTAX' && parts.length === 2 && parts[0] === 'pg_catalog';
  if (sqlSyntax) return { name: parts[1]! };
  return qualifiedName(parts);
}

/** What a FuncCall node does (classifyFunctionCall of its name and constant arguments). */
export function callEffect(call: PgRecord): FunctionEffect | undefined {
  const fn = calledFunction(call);
  return fn === undefined ? undefined : classifyFunctionCall(fn, asList(call.args).map(constantString));
}

/**
 * The name (lower case) of a called function the catalog here does not know as a built-in: a user's
 * function, an extension's, or a built-in missing from the catalog. What it returns is not in the
 * statement's text (`SELECT card_of(42)` may read any table); undefined for known built-ins.
 */
export function opaqueFunctionName(call: PgRecord): string | undefined {
  const fn = calledFunction(call);
  if (fn === undefined) return undefined;
  const lower = fn.name.toLowerCase();
  return isBuiltinSpelling(fn) && builtinEffect(lower, []) !== undefined ? undefined : lower;
}

/**
 * Whether a name can resolve to a built-in: unqualified or in pg_catalog (searched first), and in
 * lower case. Built-ins are all lower case, so a quoted "LOWER" can only be someone's own function.
 */
function isBuiltinSpelling(name: QualifiedName): boolean {
  const inCatalog = name.schema === undefined || name.schema === 'pg_catalog';
  return inCatalog && name.name === name.name.toLowerCase();
}

function builtinEffect(name: string, constantArguments: readonly (string | undefined)[]): FunctionEffect | undefined {
  if (name === 'set_config') return { operation: setConfigOperation(constantArguments[0]) };
  const operation = knownFunctionOperation(name);
  if (operation === undefined) return undefined;
  if (!SEQUENCE_ARGUMENT_FUNCTIONS.has(name)) return { operation };
  const sequence = constantArguments[0] === undefined ? undefined : parseRelationName(constantArguments[0]);
  return sequence === undefined ? { operation } : { operation, relation: sequence };
}

/** set_config of an ordinary setting is session state; of the role, or of a name we cannot see, admin. */
function setConfigOperation(settingName: string | undefined): SqlOperation {
  if (settingName === undefined || isPrivilegedSetting(settingName.trim())) return 'admin';
  return 'session';
}

/**
 * Parses a relation name given as text, the way PostgreSQL reads a regclass literal:
 * dot-separated parts, unquoted parts lowercased, "quoted" parts kept with "" as a quote.
 * Returns undefined for text that is not a well-formed name.
 */
export function parseRelationName(text: string): QualifiedName | undefined {
  const parts: string[] = [];
  let index = 0;
  const source = text.trim();
  while (index <= source.length) {
    const part = readNamePart(source, index);
    if (part === undefined) return undefined;
    parts.push(part.value);
    index = part.end;
    if (index === source.length) break;
    if (source[index] !== '.') return undefined;
    index += 1;
  }
  if (parts.length === 0 || parts.length > 3) return undefined;
  const name = parts[parts.length - 1];
  return parts.length === 1 ? { name } : { schema: parts[parts.length - 2], name };
}

function readNamePart(source: string, start: number): { value: string; end: number } | undefined {
  if (source[start] === '"') return readQuotedPart(source, start + 1);
  let end = start;
  while (end < source.length && source[end] !== '.' && source[end] !== '"') end += 1;
  const value = source.slice(start, end).trim();
  if (value === '' || value.includes(' ') || value.includes('\t') || value.includes('\n')) return undefined;
  return { value: asciiLowerCase(value), end };
}

function readQuotedPart(source: string, start: number): { value: string; end: number } | undefined {
  let value = '';
  let index = start;
  while (index < source.length) {
    if (source[index] === '"') {
      if (source[index + 1] !== '"') return value === '' ? undefined : { value, end: index + 1 };
      value += '"';
      index += 2;
    } else {
      value += source[index];
      index += 1;
    }
  }
  return undefined;
}

/** PostgreSQL folds unquoted identifiers to lower case in ASCII only (UTF-8 letters keep their case). */
function asciiLowerCase(value: string): string {
  let result = '';
  for (const char of value) result += char >= 'A' && char <= 'Z' ? char.toLowerCase() : char;
  return result;
}
