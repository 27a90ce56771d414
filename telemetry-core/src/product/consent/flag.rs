//! `--telemetry=<value>` for clap command lines (feature `clap`): [`TelemetryArgs`].

use super::ValueRule;
use super::values::parse_value;

/// `--telemetry=<value>` for clap, added to a product's arguments with one
/// `#[command(flatten)]`.
///
/// ```
/// use clap::Parser;
/// use telemetry_core::consent::TelemetryArgs;
///
/// #[derive(Parser)]
/// struct Cli {
///     #[command(flatten)]
///     telemetry: TelemetryArgs,
/// }
///
/// let cli = Cli::try_parse_from(["server", "--telemetry=opt-out"]).unwrap();
/// assert_eq!(cli.telemetry.telemetry, Some(false));
/// assert!(Cli::try_parse_from(["server", "--telemetry=maybe"]).is_err());
/// ```
#[derive(clap::Args, Clone, Debug, Default, PartialEq, Eq)]
pub struct TelemetryArgs {
    /// Enable or disable anonymous usage telemetry: 1, t, true, y, yes, on, enable, enabled,
    /// optin, opt-in or allow to enable; 0, f, false, n, no, off, disable, disabled, optout,
    /// opt-out, disallow or forbid to disable.
    #[arg(long = "telemetry", value_name = "VALUE", value_parser = parse_flag)]
    pub telemetry: Option<bool>,
}

fn parse_flag(value: &str) -> Result<bool, String> {
    parse_value("--telemetry", value, ValueRule::FerretDb).map_err(|e| e.to_string())
}

impl TelemetryArgs {
    /// The flag as a consent source for [`ConsentBuilder::flag`](super::ConsentBuilder::flag): `"enable"`, `"disable"` or
    /// nothing.
    pub fn value(&self) -> Option<&'static str> {
        self.telemetry
            .map(|yes| if yes { "enable" } else { "disable" })
    }
}
