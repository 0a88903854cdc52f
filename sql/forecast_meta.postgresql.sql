-- forecast_meta: PostgreSQL DDL generated from fcast_assets.db.models by `fcast db ddl`. Do not edit.

CREATE TABLE dataset_game (
	game_id SERIAL NOT NULL, 
	code VARCHAR NOT NULL, 
	name VARCHAR NOT NULL, 
	n_main INTEGER NOT NULL, 
	n_bonus INTEGER NOT NULL, 
	number_min INTEGER NOT NULL, 
	number_max INTEGER NOT NULL, 
	allow_repeat BOOLEAN NOT NULL, 
	order_matters BOOLEAN NOT NULL, 
	draw_weekdays JSONB, 
	active BOOLEAN NOT NULL, 
	rules JSONB, 
	description TEXT, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (game_id)
);
CREATE INDEX ix_dataset_game_active ON dataset_game (active);
CREATE UNIQUE INDEX ix_dataset_game_code ON dataset_game (code);

CREATE TABLE feature_generator (
	generator_id SERIAL NOT NULL, 
	name VARCHAR NOT NULL, 
	kind VARCHAR NOT NULL, 
	library VARCHAR NOT NULL, 
	symbol VARCHAR NOT NULL, 
	params JSONB, 
	output_schema JSONB, 
	description TEXT, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (generator_id)
);
CREATE INDEX ix_feature_generator_kind ON feature_generator (kind);
CREATE UNIQUE INDEX ix_feature_generator_name ON feature_generator (name);

CREATE TABLE feature_set (
	feature_set_id SERIAL NOT NULL, 
	name VARCHAR NOT NULL, 
	description TEXT, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (feature_set_id)
);
CREATE UNIQUE INDEX ix_feature_set_name ON feature_set (name);

CREATE TABLE registry_capability (
	capability_code VARCHAR NOT NULL, 
	description VARCHAR NOT NULL, 
	PRIMARY KEY (capability_code)
);

CREATE TABLE registry_library (
	library_id SERIAL NOT NULL, 
	name VARCHAR NOT NULL, 
	import_name VARCHAR NOT NULL, 
	dist_name VARCHAR NOT NULL, 
	vendor VARCHAR, 
	repo_url VARCHAR, 
	docs_url VARCHAR, 
	PRIMARY KEY (library_id)
);
CREATE UNIQUE INDEX ix_registry_library_name ON registry_library (name);

CREATE TABLE dataset_game_slot (
	slot_id SERIAL NOT NULL, 
	game_id INTEGER NOT NULL, 
	slot_code VARCHAR NOT NULL, 
	slot_index INTEGER NOT NULL, 
	role VARCHAR NOT NULL, 
	number_min INTEGER, 
	number_max INTEGER, 
	PRIMARY KEY (slot_id), 
	UNIQUE (game_id, slot_code), 
	FOREIGN KEY(game_id) REFERENCES dataset_game (game_id)
);
CREATE INDEX ix_dataset_game_slot_game_id ON dataset_game_slot (game_id);

CREATE TABLE dataset_source (
	source_id SERIAL NOT NULL, 
	game_id INTEGER NOT NULL, 
	url VARCHAR NOT NULL, 
	format VARCHAR NOT NULL, 
	terms_url VARCHAR, 
	checked_at TIMESTAMP WITH TIME ZONE, 
	enabled BOOLEAN NOT NULL, 
	PRIMARY KEY (source_id), 
	UNIQUE (game_id, url), 
	FOREIGN KEY(game_id) REFERENCES dataset_game (game_id)
);
CREATE INDEX ix_dataset_source_game_id ON dataset_source (game_id);

CREATE TABLE dataset_version (
	dataset_version_id SERIAL NOT NULL, 
	game_id INTEGER NOT NULL, 
	layer VARCHAR NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	source_hash VARCHAR NOT NULL, 
	row_count INTEGER NOT NULL, 
	first_draw_date DATE, 
	last_draw_date DATE, 
	first_draw_no INTEGER, 
	last_draw_no INTEGER, 
	lake_uri VARCHAR NOT NULL, 
	delta_version INTEGER, 
	source VARCHAR, 
	run_id VARCHAR, 
	stats JSONB, 
	PRIMARY KEY (dataset_version_id), 
	FOREIGN KEY(game_id) REFERENCES dataset_game (game_id)
);
CREATE INDEX ix_dataset_version_game_id ON dataset_version (game_id);
CREATE INDEX ix_dataset_version_layer ON dataset_version (layer);
CREATE INDEX ix_dataset_version_source_hash ON dataset_version (source_hash);

CREATE TABLE feature_def (
	feature_id SERIAL NOT NULL, 
	name VARCHAR NOT NULL, 
	"group" VARCHAR NOT NULL, 
	dtype VARCHAR NOT NULL, 
	generator_id INTEGER, 
	definition JSONB, 
	covers_horizon BOOLEAN NOT NULL, 
	available VARCHAR, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (feature_id), 
	FOREIGN KEY(generator_id) REFERENCES feature_generator (generator_id)
);
CREATE INDEX ix_feature_def_generator_id ON feature_def (generator_id);
CREATE INDEX ix_feature_def_group ON feature_def ("group");
CREATE UNIQUE INDEX ix_feature_def_name ON feature_def (name);

CREATE TABLE model_series_selector (
	selector_id SERIAL NOT NULL, 
	game_id INTEGER NOT NULL, 
	name VARCHAR NOT NULL, 
	unique_ids JSONB, 
	partition_key VARCHAR NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (selector_id), 
	UNIQUE (game_id, name), 
	FOREIGN KEY(game_id) REFERENCES dataset_game (game_id)
);
CREATE INDEX ix_model_series_selector_game_id ON model_series_selector (game_id);
CREATE UNIQUE INDEX ix_model_series_selector_partition_key ON model_series_selector (partition_key);

CREATE TABLE registry_release (
	release_id SERIAL NOT NULL, 
	library_id INTEGER NOT NULL, 
	version VARCHAR NOT NULL, 
	version_order VARCHAR, 
	scanned_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	python_version VARCHAR NOT NULL, 
	environment JSONB, 
	scan_seconds FLOAT, 
	stats JSONB, 
	PRIMARY KEY (release_id), 
	UNIQUE (library_id, version), 
	FOREIGN KEY(library_id) REFERENCES registry_library (library_id)
);
CREATE INDEX ix_registry_release_library_id ON registry_release (library_id);

CREATE TABLE compat_run (
	compat_run_id SERIAL NOT NULL, 
	release_id INTEGER NOT NULL, 
	library VARCHAR NOT NULL, 
	started_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	finished_at TIMESTAMP WITH TIME ZONE, 
	workers INTEGER NOT NULL, 
	cells_total INTEGER NOT NULL, 
	cells_ok INTEGER NOT NULL, 
	cells_error INTEGER NOT NULL, 
	cells_timeout INTEGER NOT NULL, 
	cells_skipped INTEGER NOT NULL, 
	cells_suspect INTEGER NOT NULL, 
	wall_seconds FLOAT, 
	config JSONB, 
	PRIMARY KEY (compat_run_id), 
	FOREIGN KEY(release_id) REFERENCES registry_release (release_id)
);
CREATE INDEX ix_compat_run_release_id ON compat_run (release_id);

CREATE TABLE dataset_dq_issue (
	dq_issue_id SERIAL NOT NULL, 
	dataset_version_id INTEGER, 
	game_id INTEGER, 
	unique_id VARCHAR NOT NULL, 
	ds DATE, 
	draw_no INTEGER, 
	rule VARCHAR NOT NULL, 
	severity VARCHAR NOT NULL, 
	detail JSONB, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (dq_issue_id), 
	FOREIGN KEY(dataset_version_id) REFERENCES dataset_version (dataset_version_id), 
	FOREIGN KEY(game_id) REFERENCES dataset_game (game_id)
);
CREATE INDEX ix_dataset_dq_issue_dataset_version_id ON dataset_dq_issue (dataset_version_id);
CREATE INDEX ix_dataset_dq_issue_game_id ON dataset_dq_issue (game_id);
CREATE INDEX ix_dataset_dq_issue_rule ON dataset_dq_issue (rule);
CREATE INDEX ix_dataset_dq_issue_unique_id ON dataset_dq_issue (unique_id);

CREATE TABLE dataset_profile (
	profile_id SERIAL NOT NULL, 
	dataset_version_id INTEGER NOT NULL, 
	unique_id VARCHAR NOT NULL, 
	metric VARCHAR NOT NULL, 
	value FLOAT, 
	detail JSONB, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (profile_id), 
	UNIQUE (dataset_version_id, unique_id, metric), 
	FOREIGN KEY(dataset_version_id) REFERENCES dataset_version (dataset_version_id)
);
CREATE INDEX ix_dataset_profile_dataset_version_id ON dataset_profile (dataset_version_id);
CREATE INDEX ix_dataset_profile_metric ON dataset_profile (metric);
CREATE INDEX ix_dataset_profile_unique_id ON dataset_profile (unique_id);

CREATE TABLE feature_materialization (
	materialization_id SERIAL NOT NULL, 
	dataset_version_id INTEGER, 
	feature_set_id INTEGER, 
	game_id INTEGER, 
	table_name VARCHAR NOT NULL, 
	lake_uri VARCHAR NOT NULL, 
	schema_hash VARCHAR NOT NULL, 
	row_count INTEGER NOT NULL, 
	horizon INTEGER, 
	availability JSONB, 
	stats JSONB, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (materialization_id), 
	FOREIGN KEY(dataset_version_id) REFERENCES dataset_version (dataset_version_id), 
	FOREIGN KEY(feature_set_id) REFERENCES feature_set (feature_set_id), 
	FOREIGN KEY(game_id) REFERENCES dataset_game (game_id)
);
CREATE INDEX ix_feature_materialization_dataset_version_id ON feature_materialization (dataset_version_id);
CREATE INDEX ix_feature_materialization_feature_set_id ON feature_materialization (feature_set_id);
CREATE INDEX ix_feature_materialization_game_id ON feature_materialization (game_id);

CREATE TABLE feature_set_item (
	item_id SERIAL NOT NULL, 
	feature_set_id INTEGER NOT NULL, 
	feature_id INTEGER NOT NULL, 
	required BOOLEAN NOT NULL, 
	ord INTEGER NOT NULL, 
	PRIMARY KEY (item_id), 
	UNIQUE (feature_set_id, feature_id), 
	FOREIGN KEY(feature_set_id) REFERENCES feature_set (feature_set_id), 
	FOREIGN KEY(feature_id) REFERENCES feature_def (feature_id)
);
CREATE INDEX ix_feature_set_item_feature_id ON feature_set_item (feature_id);
CREATE INDEX ix_feature_set_item_feature_set_id ON feature_set_item (feature_set_id);

CREATE TABLE model_registry (
	model_id SERIAL NOT NULL, 
	game_id INTEGER NOT NULL, 
	selector_id INTEGER NOT NULL, 
	library VARCHAR NOT NULL, 
	model_class VARCHAR NOT NULL, 
	release_id INTEGER, 
	series_mode VARCHAR NOT NULL, 
	n_series INTEGER NOT NULL, 
	freq JSONB, 
	hyperparams JSONB, 
	hist_exog JSONB, 
	stat_exog JSONB, 
	futr_exog JSONB, 
	cv JSONB, 
	metrics JSONB, 
	feature_set_id INTEGER, 
	dataset_version_id INTEGER, 
	version INTEGER NOT NULL, 
	artifact_uri VARCHAR, 
	status VARCHAR NOT NULL, 
	notes JSONB, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (model_id), 
	UNIQUE (game_id, selector_id), 
	FOREIGN KEY(game_id) REFERENCES dataset_game (game_id), 
	FOREIGN KEY(selector_id) REFERENCES model_series_selector (selector_id), 
	FOREIGN KEY(release_id) REFERENCES registry_release (release_id), 
	FOREIGN KEY(feature_set_id) REFERENCES feature_set (feature_set_id), 
	FOREIGN KEY(dataset_version_id) REFERENCES dataset_version (dataset_version_id)
);
CREATE INDEX ix_model_registry_game_id ON model_registry (game_id);
CREATE INDEX ix_model_registry_selector_id ON model_registry (selector_id);

CREATE TABLE registry_import_failure (
	failure_id SERIAL NOT NULL, 
	release_id INTEGER NOT NULL, 
	module VARCHAR NOT NULL, 
	exception_type VARCHAR NOT NULL, 
	message TEXT, 
	PRIMARY KEY (failure_id), 
	FOREIGN KEY(release_id) REFERENCES registry_release (release_id)
);
CREATE INDEX ix_registry_import_failure_release_id ON registry_import_failure (release_id);

CREATE TABLE registry_release_diff (
	diff_id SERIAL NOT NULL, 
	library_id INTEGER NOT NULL, 
	from_release_id INTEGER NOT NULL, 
	to_release_id INTEGER NOT NULL, 
	qualname VARCHAR NOT NULL, 
	param_name VARCHAR, 
	change VARCHAR NOT NULL, 
	detail JSONB, 
	PRIMARY KEY (diff_id), 
	FOREIGN KEY(library_id) REFERENCES registry_library (library_id), 
	FOREIGN KEY(from_release_id) REFERENCES registry_release (release_id), 
	FOREIGN KEY(to_release_id) REFERENCES registry_release (release_id)
);
CREATE INDEX ix_registry_release_diff_library_id ON registry_release_diff (library_id);
CREATE INDEX ix_registry_release_diff_to_release_id ON registry_release_diff (to_release_id);

CREATE TABLE registry_symbol (
	symbol_id SERIAL NOT NULL, 
	release_id INTEGER NOT NULL, 
	qualname VARCHAR NOT NULL, 
	module VARCHAR NOT NULL, 
	name VARCHAR NOT NULL, 
	kind VARCHAR NOT NULL, 
	parent_symbol_id INTEGER, 
	is_public BOOLEAN NOT NULL, 
	doc_summary TEXT, 
	docstring TEXT, 
	doc_style VARCHAR, 
	signature TEXT, 
	defined_in VARCHAR, 
	bases JSONB, 
	source_file VARCHAR, 
	lineno INTEGER, 
	PRIMARY KEY (symbol_id), 
	UNIQUE (release_id, qualname), 
	FOREIGN KEY(release_id) REFERENCES registry_release (release_id), 
	FOREIGN KEY(parent_symbol_id) REFERENCES registry_symbol (symbol_id)
);
CREATE INDEX ix_registry_symbol_kind ON registry_symbol (kind);
CREATE INDEX ix_registry_symbol_parent_symbol_id ON registry_symbol (parent_symbol_id);
CREATE INDEX ix_registry_symbol_qualname ON registry_symbol (qualname);
CREATE INDEX ix_registry_symbol_release_id ON registry_symbol (release_id);

CREATE TABLE compat_result (
	result_id SERIAL NOT NULL, 
	compat_run_id INTEGER NOT NULL, 
	release_id INTEGER NOT NULL, 
	model VARCHAR NOT NULL, 
	method VARCHAR NOT NULL, 
	param VARCHAR NOT NULL, 
	value JSONB, 
	value_label VARCHAR NOT NULL, 
	scenario VARCHAR NOT NULL, 
	scenario_facts JSONB, 
	status VARCHAR NOT NULL, 
	exception_type VARCHAR, 
	message TEXT, 
	seconds FLOAT, 
	context JSONB, 
	PRIMARY KEY (result_id), 
	FOREIGN KEY(compat_run_id) REFERENCES compat_run (compat_run_id), 
	FOREIGN KEY(release_id) REFERENCES registry_release (release_id)
);
CREATE INDEX ix_compat_result_compat_run_id ON compat_result (compat_run_id);
CREATE INDEX ix_compat_result_method ON compat_result (method);
CREATE INDEX ix_compat_result_model ON compat_result (model);
CREATE INDEX ix_compat_result_param ON compat_result (param);
CREATE INDEX ix_compat_result_release_id ON compat_result (release_id);
CREATE INDEX ix_compat_result_status ON compat_result (status);

CREATE TABLE model_xai (
	xai_id SERIAL NOT NULL, 
	model_id INTEGER NOT NULL, 
	version INTEGER NOT NULL, 
	feature_name VARCHAR NOT NULL, 
	importance FLOAT NOT NULL, 
	importance_std FLOAT, 
	method VARCHAR NOT NULL, 
	detail JSONB, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (xai_id), 
	FOREIGN KEY(model_id) REFERENCES model_registry (model_id)
);
CREATE INDEX ix_model_xai_model_id ON model_xai (model_id);

CREATE TABLE registry_loss (
	loss_id SERIAL NOT NULL, 
	symbol_id INTEGER NOT NULL, 
	category VARCHAR NOT NULL, 
	output_type VARCHAR NOT NULL, 
	supports_level BOOLEAN NOT NULL, 
	supports_quantiles BOOLEAN NOT NULL, 
	output_names JSONB, 
	evidence JSONB, 
	PRIMARY KEY (loss_id), 
	UNIQUE (symbol_id), 
	FOREIGN KEY(symbol_id) REFERENCES registry_symbol (symbol_id)
);

CREATE TABLE registry_param (
	param_id SERIAL NOT NULL, 
	symbol_id INTEGER NOT NULL, 
	name VARCHAR NOT NULL, 
	position INTEGER NOT NULL, 
	kind VARCHAR NOT NULL, 
	annotation TEXT, 
	type_norm JSONB, 
	"default" JSONB, 
	has_default BOOLEAN NOT NULL, 
	required BOOLEAN NOT NULL, 
	doc_type TEXT, 
	doc_text TEXT, 
	sources JSONB, 
	PRIMARY KEY (param_id), 
	UNIQUE (symbol_id, name), 
	FOREIGN KEY(symbol_id) REFERENCES registry_symbol (symbol_id)
);
CREATE INDEX ix_registry_param_name ON registry_param (name);
CREATE INDEX ix_registry_param_symbol_id ON registry_param (symbol_id);

CREATE TABLE registry_symbol_alias (
	alias_id SERIAL NOT NULL, 
	release_id INTEGER NOT NULL, 
	symbol_id INTEGER NOT NULL, 
	alias_qualname VARCHAR NOT NULL, 
	module VARCHAR NOT NULL, 
	PRIMARY KEY (alias_id), 
	UNIQUE (release_id, alias_qualname), 
	FOREIGN KEY(release_id) REFERENCES registry_release (release_id), 
	FOREIGN KEY(symbol_id) REFERENCES registry_symbol (symbol_id)
);
CREATE INDEX ix_registry_symbol_alias_alias_qualname ON registry_symbol_alias (alias_qualname);
CREATE INDEX ix_registry_symbol_alias_release_id ON registry_symbol_alias (release_id);
CREATE INDEX ix_registry_symbol_alias_symbol_id ON registry_symbol_alias (symbol_id);

CREATE TABLE registry_symbol_capability (
	id SERIAL NOT NULL, 
	symbol_id INTEGER NOT NULL, 
	capability_code VARCHAR NOT NULL, 
	value JSONB, 
	source VARCHAR NOT NULL, 
	detail JSONB, 
	PRIMARY KEY (id), 
	UNIQUE (symbol_id, capability_code, source), 
	FOREIGN KEY(symbol_id) REFERENCES registry_symbol (symbol_id), 
	FOREIGN KEY(capability_code) REFERENCES registry_capability (capability_code)
);
CREATE INDEX ix_registry_symbol_capability_capability_code ON registry_symbol_capability (capability_code);
CREATE INDEX ix_registry_symbol_capability_symbol_id ON registry_symbol_capability (symbol_id);

CREATE TABLE run_plan (
	plan_id SERIAL NOT NULL, 
	name VARCHAR NOT NULL, 
	model_id INTEGER, 
	selector_id INTEGER, 
	dataset_version_id INTEGER, 
	enabled BOOLEAN NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	library VARCHAR NOT NULL, 
	data VARCHAR, 
	metrics JSONB, 
	description TEXT, 
	expect JSONB, 
	source VARCHAR, 
	PRIMARY KEY (plan_id), 
	FOREIGN KEY(model_id) REFERENCES model_registry (model_id), 
	FOREIGN KEY(selector_id) REFERENCES model_series_selector (selector_id), 
	FOREIGN KEY(dataset_version_id) REFERENCES dataset_version (dataset_version_id)
);
CREATE UNIQUE INDEX ix_run_plan_name ON run_plan (name);

CREATE TABLE registry_model_loss_compat (
	id SERIAL NOT NULL, 
	model_symbol_id INTEGER NOT NULL, 
	loss_symbol_id INTEGER NOT NULL, 
	status VARCHAR NOT NULL, 
	exception_type VARCHAR, 
	message TEXT, 
	compat_run_id INTEGER NOT NULL, 
	result_id INTEGER, 
	PRIMARY KEY (id), 
	UNIQUE (compat_run_id, model_symbol_id, loss_symbol_id), 
	FOREIGN KEY(model_symbol_id) REFERENCES registry_symbol (symbol_id), 
	FOREIGN KEY(loss_symbol_id) REFERENCES registry_symbol (symbol_id), 
	FOREIGN KEY(compat_run_id) REFERENCES compat_run (compat_run_id), 
	FOREIGN KEY(result_id) REFERENCES compat_result (result_id)
);
CREATE INDEX ix_registry_model_loss_compat_compat_run_id ON registry_model_loss_compat (compat_run_id);
CREATE INDEX ix_registry_model_loss_compat_loss_symbol_id ON registry_model_loss_compat (loss_symbol_id);
CREATE INDEX ix_registry_model_loss_compat_model_symbol_id ON registry_model_loss_compat (model_symbol_id);

CREATE TABLE registry_param_constraint (
	constraint_id SERIAL NOT NULL, 
	param_id INTEGER NOT NULL, 
	constraint_type VARCHAR NOT NULL, 
	spec JSONB, 
	message TEXT, 
	source VARCHAR NOT NULL, 
	PRIMARY KEY (constraint_id), 
	FOREIGN KEY(param_id) REFERENCES registry_param (param_id)
);
CREATE INDEX ix_registry_param_constraint_param_id ON registry_param_constraint (param_id);

CREATE TABLE registry_param_enum (
	enum_id SERIAL NOT NULL, 
	param_id INTEGER NOT NULL, 
	value JSONB, 
	source VARCHAR NOT NULL, 
	PRIMARY KEY (enum_id), 
	FOREIGN KEY(param_id) REFERENCES registry_param (param_id)
);
CREATE INDEX ix_registry_param_enum_param_id ON registry_param_enum (param_id);

CREATE TABLE registry_search_doc (
	doc_id SERIAL NOT NULL, 
	release_id INTEGER NOT NULL, 
	symbol_id INTEGER NOT NULL, 
	param_id INTEGER, 
	library VARCHAR NOT NULL, 
	kind VARCHAR NOT NULL, 
	qualname VARCHAR NOT NULL, 
	name VARCHAR NOT NULL, 
	body TEXT, 
	PRIMARY KEY (doc_id), 
	FOREIGN KEY(release_id) REFERENCES registry_release (release_id), 
	FOREIGN KEY(symbol_id) REFERENCES registry_symbol (symbol_id), 
	FOREIGN KEY(param_id) REFERENCES registry_param (param_id)
);
CREATE INDEX ix_registry_search_doc_release_id ON registry_search_doc (release_id);
CREATE INDEX ix_registry_search_doc_symbol_id ON registry_search_doc (symbol_id);

CREATE TABLE run_execution (
	execution_id SERIAL NOT NULL, 
	plan_id INTEGER NOT NULL, 
	release_id INTEGER, 
	status VARCHAR NOT NULL, 
	started_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	ended_at TIMESTAMP WITH TIME ZONE, 
	work_dir VARCHAR, 
	PRIMARY KEY (execution_id), 
	FOREIGN KEY(plan_id) REFERENCES run_plan (plan_id), 
	FOREIGN KEY(release_id) REFERENCES registry_release (release_id)
);
CREATE INDEX ix_run_execution_plan_id ON run_execution (plan_id);

CREATE TABLE run_step (
	step_id SERIAL NOT NULL, 
	plan_id INTEGER NOT NULL, 
	ord INTEGER NOT NULL, 
	method VARCHAR NOT NULL, 
	params JSONB, 
	depends_on_step_id INTEGER, 
	name VARCHAR, 
	PRIMARY KEY (step_id), 
	FOREIGN KEY(plan_id) REFERENCES run_plan (plan_id), 
	FOREIGN KEY(depends_on_step_id) REFERENCES run_step (step_id)
);
CREATE INDEX ix_run_step_plan_id ON run_step (plan_id);

CREATE TABLE model_version (
	version_id SERIAL NOT NULL, 
	model_id INTEGER NOT NULL, 
	version INTEGER NOT NULL, 
	artifact_uri VARCHAR NOT NULL, 
	release_id INTEGER, 
	library_version VARCHAR, 
	dataset_version_id INTEGER, 
	feature_materialization_id INTEGER, 
	plan_id INTEGER, 
	execution_id INTEGER, 
	hyperparams JSONB, 
	hist_exog JSONB, 
	stat_exog JSONB, 
	futr_exog JSONB, 
	train_rows INTEGER, 
	last_draw_no INTEGER, 
	cv_metrics JSONB, 
	beats_baselines BOOLEAN, 
	reason TEXT, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (version_id), 
	UNIQUE (model_id, version), 
	FOREIGN KEY(model_id) REFERENCES model_registry (model_id), 
	FOREIGN KEY(release_id) REFERENCES registry_release (release_id), 
	FOREIGN KEY(dataset_version_id) REFERENCES dataset_version (dataset_version_id), 
	FOREIGN KEY(feature_materialization_id) REFERENCES feature_materialization (materialization_id), 
	FOREIGN KEY(plan_id) REFERENCES run_plan (plan_id), 
	FOREIGN KEY(execution_id) REFERENCES run_execution (execution_id)
);
CREATE INDEX ix_model_version_model_id ON model_version (model_id);

CREATE TABLE run_artifact (
	artifact_id SERIAL NOT NULL, 
	plan_id INTEGER NOT NULL, 
	step_id INTEGER, 
	execution_id INTEGER, 
	kind VARCHAR NOT NULL, 
	uri VARCHAR NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (artifact_id), 
	FOREIGN KEY(plan_id) REFERENCES run_plan (plan_id), 
	FOREIGN KEY(step_id) REFERENCES run_step (step_id), 
	FOREIGN KEY(execution_id) REFERENCES run_execution (execution_id)
);
CREATE INDEX ix_run_artifact_execution_id ON run_artifact (execution_id);
CREATE INDEX ix_run_artifact_plan_id ON run_artifact (plan_id);

CREATE TABLE run_error (
	error_id SERIAL NOT NULL, 
	step_id INTEGER NOT NULL, 
	execution_id INTEGER, 
	exception_type VARCHAR NOT NULL, 
	message TEXT, 
	traceback TEXT, 
	PRIMARY KEY (error_id), 
	FOREIGN KEY(step_id) REFERENCES run_step (step_id), 
	FOREIGN KEY(execution_id) REFERENCES run_execution (execution_id)
);
CREATE INDEX ix_run_error_execution_id ON run_error (execution_id);
CREATE INDEX ix_run_error_step_id ON run_error (step_id);

CREATE TABLE run_metric (
	metric_id SERIAL NOT NULL, 
	step_id INTEGER NOT NULL, 
	execution_id INTEGER, 
	metric VARCHAR NOT NULL, 
	value FLOAT, 
	unique_id VARCHAR, 
	split VARCHAR NOT NULL, 
	"window" INTEGER, 
	model VARCHAR, 
	PRIMARY KEY (metric_id), 
	FOREIGN KEY(step_id) REFERENCES run_step (step_id), 
	FOREIGN KEY(execution_id) REFERENCES run_execution (execution_id)
);
CREATE INDEX ix_run_metric_execution_id ON run_metric (execution_id);
CREATE INDEX ix_run_metric_step_id ON run_metric (step_id);

CREATE TABLE run_resource (
	resource_id SERIAL NOT NULL, 
	step_id INTEGER, 
	model_id INTEGER, 
	execution_id INTEGER, 
	wall_s FLOAT NOT NULL, 
	cpu_user_s FLOAT, 
	cpu_sys_s FLOAT, 
	max_rss_mb FLOAT, 
	max_vram_mb FLOAT, 
	io_read_mb FLOAT, 
	io_write_mb FLOAT, 
	device VARCHAR, 
	PRIMARY KEY (resource_id), 
	FOREIGN KEY(step_id) REFERENCES run_step (step_id), 
	FOREIGN KEY(model_id) REFERENCES model_registry (model_id), 
	FOREIGN KEY(execution_id) REFERENCES run_execution (execution_id)
);
CREATE INDEX ix_run_resource_execution_id ON run_resource (execution_id);
CREATE INDEX ix_run_resource_model_id ON run_resource (model_id);
CREATE INDEX ix_run_resource_step_id ON run_resource (step_id);

CREATE TABLE run_result (
	result_id SERIAL NOT NULL, 
	step_id INTEGER NOT NULL, 
	execution_id INTEGER, 
	status VARCHAR NOT NULL, 
	started_at TIMESTAMP WITH TIME ZONE, 
	ended_at TIMESTAMP WITH TIME ZONE, 
	summary JSONB, 
	PRIMARY KEY (result_id), 
	FOREIGN KEY(step_id) REFERENCES run_step (step_id), 
	FOREIGN KEY(execution_id) REFERENCES run_execution (execution_id)
);
CREATE INDEX ix_run_result_execution_id ON run_result (execution_id);
CREATE INDEX ix_run_result_step_id ON run_result (step_id);

CREATE TABLE run_validation (
	validation_id SERIAL NOT NULL, 
	step_id INTEGER NOT NULL, 
	plan_id INTEGER NOT NULL, 
	release_id INTEGER, 
	ok BOOLEAN NOT NULL, 
	violations JSONB, 
	checked_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (validation_id), 
	FOREIGN KEY(step_id) REFERENCES run_step (step_id), 
	FOREIGN KEY(plan_id) REFERENCES run_plan (plan_id), 
	FOREIGN KEY(release_id) REFERENCES registry_release (release_id)
);
CREATE INDEX ix_run_validation_plan_id ON run_validation (plan_id);
CREATE INDEX ix_run_validation_step_id ON run_validation (step_id);

-- full-text search (also run by fcast_assets.db.engine.init_db)
ALTER TABLE registry_search_doc ADD COLUMN IF NOT EXISTS tsv tsvector GENERATED ALWAYS AS (setweight(to_tsvector('simple', translate(coalesce(qualname, ''), '._', '  ')), 'A') || setweight(to_tsvector('simple', translate(coalesce(name, ''), '._', '  ')), 'A') || setweight(to_tsvector('simple', translate(coalesce(body, ''), '._', '  ')), 'B')) STORED;
CREATE INDEX IF NOT EXISTS ix_registry_search_doc_tsv ON registry_search_doc USING GIN (tsv);
