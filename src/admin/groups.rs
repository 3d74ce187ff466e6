//! Not written yet.

pub const OPTIONS: &[super::args::OptionSpec] = &[];

pub async fn run(
    _: &super::Session,
    _: &super::args::Parsed,
    _: &mut String,
) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
