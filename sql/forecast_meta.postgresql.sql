-- forecast_meta: PostgreSQL DDL generated from fcast_assets.db.models by `fcast db ddl`. Do not edit.

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

CREATE TABLE registry_release (
	release_id SERIAL NOT NULL, 
	library_id INTEGER NOT NULL, 
	version VARCHAR NOT NULL, 
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

-- full-text search (also run by fcast_assets.db.engine.init_db)
ALTER TABLE registry_search_doc ADD COLUMN IF NOT EXISTS tsv tsvector GENERATED ALWAYS AS (setweight(to_tsvector('simple', translate(coalesce(qualname, ''), '._', '  ')), 'A') || setweight(to_tsvector('simple', translate(coalesce(name, ''), '._', '  ')), 'A') || setweight(to_tsvector('simple', translate(coalesce(body, ''), '._', '  ')), 'B')) STORED;
CREATE INDEX IF NOT EXISTS ix_registry_search_doc_tsv ON registry_search_doc USING GIN (tsv);
