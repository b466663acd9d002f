"""What the toolkit ships and reads back: bank files (`bank_file`: the format, `schema`: its
fields, `bank`: loading and checks), experts and where both are found (`experts`), provenance
(`provenance`), and the commands that make banks (`build_bank`, `shared_templates`)."""
