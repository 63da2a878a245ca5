//! A small SVG drawing backend for plotters that writes every text as glyph outlines
//! (`<path>` elements) taken from the embedded font, so an SVG figure looks the same in
//! every viewer, with no font lookup and no `<text>` element. Shapes are written like
//! plotters' own SVG backend (`line`, `rect`, `polyline`, `polygon`, `circle`).
//!
//! Text placement mirrors plotters' bitmap text rendering with the `ab_glyph` backend
//! (baseline at half the font size below the anchor's top, same advances and kerning),
//! so PNG and SVG figures share one layout.

use std::fmt::Write as _;

use ab_glyph::{Font, FontRef, OutlineCurve, Point, ScaleFont};
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingBackend, DrawingErrorKind,
    FontTransform,
};

use crate::figures::font::FONT_BYTES;

/// Writes an SVG document into a borrowed `String`; complete after `present()`.
pub struct PathSvg<'a> {
    out: &'a mut String,
    size: (u32, u32),
    font: FontRef<'static>,
    closed: bool,
}

fn rgb(c: BackendColor) -> String {
    format!("#{:02x}{:02x}{:02x}", c.rgb.0, c.rgb.1, c.rgb.2)
}

/// SVG paint attributes: a fill, or a stroke of the style's width.
fn paint<S: BackendStyle>(s: &S, fill: bool) -> String {
    let c = s.color();
    if fill {
        format!("fill=\"{}\"", rgb(c))
    } else {
        format!(
            "fill=\"none\" stroke=\"{}\" stroke-width=\"{}\"",
            rgb(c),
            s.stroke_width()
        )
    }
}

fn opacity(c: BackendColor) -> String {
    if c.alpha >= 1.0 {
        String::new()
    } else {
        format!(" opacity=\"{:.3}\"", c.alpha)
    }
}

impl<'a> PathSvg<'a> {
    pub fn new(out: &'a mut String, size: (u32, u32)) -> Self {
        out.clear();
        let _ = write!(
            out,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\">\n",
            w = size.0,
            h = size.1
        );
        PathSvg {
            out,
            size,
            font: FontRef::try_from_slice(FONT_BYTES).expect("embedded font is valid"),
            closed: false,
        }
    }

    /// The outline path (`d` attribute) of `text` at `size` px, pen starting at (x, base).
    fn text_path(&self, text: &str, size: f32, x: f32, base: f32) -> String {
        let font = self.font.as_scaled(size);
        let (sx, sy) = (font.h_scale_factor(), font.v_scale_factor());
        let mut d = String::new();
        let mut pen = x;
        let mut prev = None;
        for ch in text.chars() {
            let id = font.glyph_id(ch);
            if let Some(p) = prev {
                pen += font.kern(p, id);
            }
            prev = Some(id);
            if let Some(outline) = self.font.outline(id) {
                let map = |p: Point| (pen + p.x * sx, base - p.y * sy);
                let mut last: Option<Point> = None;
                for curve in &outline.curves {
                    let (start, end) = match curve {
                        OutlineCurve::Line(a, b) => (*a, *b),
                        OutlineCurve::Quad(a, _, b) => (*a, *b),
                        OutlineCurve::Cubic(a, _, _, b) => (*a, *b),
                    };
                    if last != Some(start) {
                        if last.is_some() {
                            d.push('Z');
                        }
                        let (x, y) = map(start);
                        let _ = write!(d, "M{x:.2} {y:.2}");
                    }
                    match curve {
                        OutlineCurve::Line(_, b) => {
                            let (x, y) = map(*b);
                            let _ = write!(d, "L{x:.2} {y:.2}");
                        }
                        OutlineCurve::Quad(_, c, b) => {
                            let ((cx, cy), (x, y)) = (map(*c), map(*b));
                            let _ = write!(d, "Q{cx:.2} {cy:.2} {x:.2} {y:.2}");
                        }
                        OutlineCurve::Cubic(_, c1, c2, b) => {
                            let ((ax, ay), (bx, by), (x, y)) = (map(*c1), map(*c2), map(*b));
                            let _ = write!(d, "C{ax:.2} {ay:.2} {bx:.2} {by:.2} {x:.2} {y:.2}");
                        }
                    }
                    last = Some(end);
                }
                if last.is_some() {
                    d.push('Z');
                }
            }
            pen += font.h_advance(id);
        }
        d
    }

    fn text_width(&self, text: &str, size: f32) -> f32 {
        let font = self.font.as_scaled(size);
        let mut w = 0.0;
        let mut prev = None;
        for ch in text.chars() {
            let id = font.glyph_id(ch);
            if let Some(p) = prev {
                w += font.kern(p, id);
            }
            prev = Some(id);
            w += font.h_advance(id);
        }
        w
    }
}

type R = Result<(), DrawingErrorKind<std::io::Error>>;

impl DrawingBackend for PathSvg<'_> {
    type ErrorType = std::io::Error;

    fn get_size(&self) -> (u32, u32) {
        self.size
    }

    fn ensure_prepared(&mut self) -> R {
        Ok(())
    }

    fn present(&mut self) -> R {
        if !self.closed {
            self.out.push_str("</svg>\n");
            self.closed = true;
        }
        Ok(())
    }

    fn draw_pixel(&mut self, p: BackendCoord, c: BackendColor) -> R {
        if c.alpha > 0.0 {
            let _ = writeln!(
                self.out,
                "<rect x=\"{}\" y=\"{}\" width=\"1\" height=\"1\" fill=\"{}\"{}/>",
                p.0,
                p.1,
                rgb(c),
                opacity(c)
            );
        }
        Ok(())
    }

    fn draw_line<S: BackendStyle>(&mut self, a: BackendCoord, b: BackendCoord, s: &S) -> R {
        let c = s.color();
        if c.alpha > 0.0 {
            let _ = writeln!(
                self.out,
                "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\" stroke-width=\"{}\"{}/>",
                a.0,
                a.1,
                b.0,
                b.1,
                rgb(c),
                s.stroke_width(),
                opacity(c)
            );
        }
        Ok(())
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        ul: BackendCoord,
        br: BackendCoord,
        s: &S,
        fill: bool,
    ) -> R {
        let c = s.color();
        if c.alpha > 0.0 {
            let paint = paint(s, fill);
            let _ = writeln!(
                self.out,
                "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" {paint}{}/>",
                ul.0,
                ul.1,
                br.0 - ul.0,
                br.1 - ul.1,
                opacity(c)
            );
        }
        Ok(())
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        s: &S,
    ) -> R {
        let c = s.color();
        if c.alpha > 0.0 {
            let pts: Vec<String> = path.into_iter().map(|(x, y)| format!("{x},{y}")).collect();
            let _ = writeln!(
                self.out,
                "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"{}\"{} points=\"{}\"/>",
                rgb(c),
                s.stroke_width(),
                opacity(c),
                pts.join(" ")
            );
        }
        Ok(())
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        r: u32,
        s: &S,
        fill: bool,
    ) -> R {
        let c = s.color();
        if c.alpha > 0.0 {
            let paint = paint(s, fill);
            let _ = writeln!(
                self.out,
                "<circle cx=\"{}\" cy=\"{}\" r=\"{r}\" {paint}{}/>",
                center.0,
                center.1,
                opacity(c)
            );
        }
        Ok(())
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        s: &S,
    ) -> R {
        let c = s.color();
        if c.alpha > 0.0 {
            let pts: Vec<String> = vert.into_iter().map(|(x, y)| format!("{x},{y}")).collect();
            let _ = writeln!(
                self.out,
                "<polygon fill=\"{}\"{} points=\"{}\"/>",
                rgb(c),
                opacity(c),
                pts.join(" ")
            );
        }
        Ok(())
    }

    fn estimate_text_size<T: BackendTextStyle>(
        &self,
        text: &str,
        style: &T,
    ) -> Result<(u32, u32), DrawingErrorKind<Self::ErrorType>> {
        let size = style.size() as f32;
        Ok((self.text_width(text, size) as u32, (size / 1.24) as u32))
    }

    fn draw_text<T: BackendTextStyle>(&mut self, text: &str, style: &T, pos: BackendCoord) -> R {
        let c = style.color();
        if c.alpha == 0.0 || text.is_empty() {
            return Ok(());
        }
        let size = style.size() as f32;
        let width = self.text_width(text, size);
        let height = size / 1.24;
        let dx = match style.anchor().h_pos {
            HPos::Left => 0.0,
            HPos::Right => -width,
            HPos::Center => -width / 2.0,
        };
        let dy = match style.anchor().v_pos {
            VPos::Top => 0.0,
            VPos::Center => -height / 2.0,
            VPos::Bottom => -height,
        };
        let angle = match style.transform() {
            FontTransform::None => 0,
            FontTransform::Rotate90 => 90,
            FontTransform::Rotate180 => 180,
            FontTransform::Rotate270 => -90,
        };
        let d = self.text_path(text, size, dx, dy + size / 2.0);
        let escaped = text
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        let _ = writeln!(
            self.out,
            "<path data-text=\"{}\" transform=\"translate({},{}) rotate({angle})\" fill=\"{}\"{} d=\"{d}\"/>",
            escaped.replace('"', "&quot;"),
            pos.0,
            pos.1,
            rgb(c),
            opacity(c)
        );
        Ok(())
    }
}
