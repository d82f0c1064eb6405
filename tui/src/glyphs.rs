//! How lines and borders are drawn: a serial terminal may not show UTF-8, so ASCII is the
//! default; UTF-8 box drawing and DEC special graphics (VT100 line drawing) are options.

/// The glyphs the UI draws borders and lines with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GlyphMode {
    /// `+`, `-`, `|`: every terminal shows them.
    #[default]
    Ascii,
    /// Unicode box drawing, sent as UTF-8.
    Utf8,
    /// Unicode box drawing in the buffer, sent as DEC special graphics (`ESC ( 0`): VT100
    /// line drawing without UTF-8.
    DecLineDrawing,
}

impl GlyphMode {
    /// Parses the config/flag spelling: `ascii`, `utf8`, `dec`.
    pub fn parse(text: &str) -> Option<GlyphMode> {
        match text {
            "ascii" => Some(GlyphMode::Ascii),
            "utf8" | "utf-8" => Some(GlyphMode::Utf8),
            "dec" => Some(GlyphMode::DecLineDrawing),
            _ => None,
        }
    }
}
