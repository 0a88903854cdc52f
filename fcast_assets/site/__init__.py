"""The documentation site: correspondence-table and registry pages generated from the metadata database
(:mod:`.build`) and the MkDocs hook that puts them, the README and the executed notebooks into the site
(:mod:`.hooks`, named in ``mkdocs.yml``)."""
