//! Reader for CTranslate2's `model.bin`.
//!
//! Layout (little-endian): `u32` binary version (≥ 2); spec name; `u32` spec
//! revision; `u32` variable count; per variable: name, `u8` rank, rank × `u32`
//! dims, `u8` dtype (0 f32, 1 i8, 2 i16, 3 i32, 4 f16, 5 bf16), `u32` byte
//! count, bytes; then `u32` alias count and (alias, target) name pairs. A
//! string is a `u16` length including a trailing NUL, then the bytes.
//!
//! The reader borrows the file's bytes: a Whisper model is read once and
//! converted, so nothing is copied.

use std::collections::BTreeMap;

/// Element type of a CTranslate2 variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    /// 32-bit float.
    F32,
    /// 8-bit integer (quantized weights or flags).
    I8,
    /// 16-bit integer.
    I16,
    /// 32-bit integer.
    I32,
    /// IEEE half float.
    F16,
    /// bfloat16.
    Bf16,
}

impl DType {
    fn from_code(code: u8) -> Option<DType> {
        Some(match code {
            0 => DType::F32,
            1 => DType::I8,
            2 => DType::I16,
            3 => DType::I32,
            4 => DType::F16,
            5 => DType::Bf16,
            _ => return None,
        })
    }

    /// The code in the file.
    pub fn code(self) -> u8 {
        match self {
            DType::F32 => 0,
            DType::I8 => 1,
            DType::I16 => 2,
            DType::I32 => 3,
            DType::F16 => 4,
            DType::Bf16 => 5,
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::I8 => 1,
            DType::I16 | DType::F16 | DType::Bf16 => 2,
            DType::F32 | DType::I32 => 4,
        }
    }
}

/// One variable (tensor or scalar).
#[derive(Debug, Clone)]
pub struct Variable<'a> {
    /// Dimensions, outermost first (row-major data). Empty for a scalar.
    pub dims: Vec<usize>,
    /// Element type.
    pub dtype: DType,
    /// Raw little-endian data.
    pub data: &'a [u8],
}

impl Variable<'_> {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.dims.iter().product()
    }

    /// Whether it has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value of an integer scalar.
    pub fn as_int(&self) -> Option<i64> {
        if !self.dims.is_empty() {
            return None;
        }
        let d = self.data;
        Some(match self.dtype {
            DType::I8 => i64::from(*d.first()? as i8),
            DType::I16 => i64::from(i16::from_le_bytes(d.get(..2)?.try_into().ok()?)),
            DType::I32 => i64::from(i32::from_le_bytes(d.get(..4)?.try_into().ok()?)),
            _ => return None,
        })
    }

    /// The elements as f32 (from f32, f16 or bf16), or `None` for integer types.
    pub fn to_f32(&self) -> Option<Vec<f32>> {
        let d = self.data;
        Some(match self.dtype {
            DType::F32 => d
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            DType::F16 => d
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            DType::Bf16 => d
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            _ => return None,
        })
    }

    /// The elements as f16 (from f16 as is, or from f32/bf16), or `None` for integer types.
    pub fn to_f16(&self) -> Option<Vec<half::f16>> {
        match self.dtype {
            DType::F16 => Some(
                self.data
                    .chunks_exact(2)
                    .map(|c| half::f16::from_le_bytes([c[0], c[1]]))
                    .collect(),
            ),
            _ => Some(
                self.to_f32()?
                    .into_iter()
                    .map(half::f16::from_f32)
                    .collect(),
            ),
        }
    }
}

/// Why a `model.bin` could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Ct2Error {
    /// The file ends inside a field.
    #[error("truncated model.bin: {0} is cut off")]
    Truncated(&'static str),
    /// Binary version this reader does not know.
    #[error("unsupported CTranslate2 binary version {0} (supported: 2 to 6)")]
    Version(u32),
    /// Unknown dtype code.
    #[error("variable `{name}` has unknown dtype code {code}")]
    DType {
        /// The variable.
        name: String,
        /// The code.
        code: u8,
    },
    /// The byte count does not match dims × dtype.
    #[error("variable `{0}`: byte count does not match its shape and type")]
    Size(String),
    /// A name is not UTF-8.
    #[error("a name in model.bin is not UTF-8")]
    Name,
    /// Bytes after the alias table.
    #[error("{0} unexpected bytes after the alias table")]
    Trailing(usize),
}

/// A parsed CTranslate2 model.
#[derive(Debug)]
pub struct Ct2Model<'a> {
    /// Binary format version.
    pub version: u32,
    /// Model spec name, e.g. `WhisperSpec`.
    pub spec: String,
    /// Spec revision.
    pub revision: u32,
    /// Variables by name.
    pub variables: BTreeMap<String, Variable<'a>>,
    /// Aliases: alias name → variable name.
    pub aliases: BTreeMap<String, String>,
}

struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Ct2Error> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or(Ct2Error::Truncated(what))?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self, what: &'static str) -> Result<u8, Ct2Error> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &'static str) -> Result<u16, Ct2Error> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, Ct2Error> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn string(&mut self, what: &'static str) -> Result<String, Ct2Error> {
        let n = self.u16(what)? as usize;
        let b = self.take(n, what)?;
        let b = b.strip_suffix(&[0]).unwrap_or(b);
        String::from_utf8(b.to_vec()).map_err(|_| Ct2Error::Name)
    }
}

impl<'a> Ct2Model<'a> {
    /// Parses a whole `model.bin`.
    pub fn parse(data: &'a [u8]) -> Result<Self, Ct2Error> {
        let mut c = Cursor { data, pos: 0 };
        let version = c.u32("binary version")?;
        if !(2..=6).contains(&version) {
            return Err(Ct2Error::Version(version));
        }
        let spec = c.string("spec name")?;
        let revision = c.u32("spec revision")?;
        let count = c.u32("variable count")?;
        let mut variables = BTreeMap::new();
        for _ in 0..count {
            let name = c.string("variable name")?;
            let rank = c.u8("rank")?;
            let mut dims = Vec::with_capacity(rank as usize);
            for _ in 0..rank {
                dims.push(c.u32("dimension")? as usize);
            }
            let code = c.u8("dtype")?;
            let dtype = DType::from_code(code).ok_or_else(|| Ct2Error::DType {
                name: name.clone(),
                code,
            })?;
            let nbytes = c.u32("byte count")? as usize;
            let elems = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
            if elems.and_then(|e| e.checked_mul(dtype.size())) != Some(nbytes) {
                return Err(Ct2Error::Size(name));
            }
            let data = c.take(nbytes, "variable data")?;
            variables.insert(name, Variable { dims, dtype, data });
        }
        let mut aliases = BTreeMap::new();
        if version >= 3 || c.pos < data.len() {
            let n = c.u32("alias count")?;
            for _ in 0..n {
                let alias = c.string("alias")?;
                let target = c.string("alias target")?;
                aliases.insert(alias, target);
            }
        }
        if c.pos != data.len() {
            return Err(Ct2Error::Trailing(data.len() - c.pos));
        }
        Ok(Ct2Model {
            version,
            spec,
            revision,
            variables,
            aliases,
        })
    }

    /// A variable by name, following aliases.
    pub fn get(&self, name: &str) -> Option<&Variable<'a>> {
        self.variables
            .get(name)
            .or_else(|| self.variables.get(self.aliases.get(name)?))
    }
}

/// Writes a CTranslate2 `model.bin` (version 6). Used to make synthetic
/// models in tests; Switchboard never needs to write one otherwise.
pub fn write(
    spec: &str,
    revision: u32,
    variables: &[(&str, &[usize], DType, &[u8])],
    aliases: &[(&str, &str)],
) -> Vec<u8> {
    fn string(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&((s.len() + 1) as u16).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
        out.push(0);
    }
    let mut out = Vec::new();
    out.extend_from_slice(&6u32.to_le_bytes());
    string(&mut out, spec);
    out.extend_from_slice(&revision.to_le_bytes());
    out.extend_from_slice(&(variables.len() as u32).to_le_bytes());
    for (name, dims, dtype, data) in variables {
        string(&mut out, name);
        out.push(dims.len() as u8);
        for d in *dims {
            out.extend_from_slice(&(*d as u32).to_le_bytes());
        }
        out.push(dtype.code());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
    }
    out.extend_from_slice(&(aliases.len() as u32).to_le_bytes());
    for (a, t) in aliases {
        string(&mut out, a);
        string(&mut out, t);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f16_bytes(v: &[f32]) -> Vec<u8> {
        v.iter()
            .flat_map(|x| half::f16::from_f32(*x).to_le_bytes())
            .collect()
    }

    #[test]
    fn parses_variables_scalars_and_aliases() {
        let w = f16_bytes(&[1.0, -2.0, 0.5, 4.0, 5.0, 6.0]);
        let heads = 6i16.to_le_bytes();
        let bytes = write(
            "WhisperSpec",
            3,
            &[
                ("decoder/embeddings/weight", &[3, 2], DType::F16, &w),
                ("encoder/num_heads", &[], DType::I16, &heads),
            ],
            &[("decoder/projection/weight", "decoder/embeddings/weight")],
        );
        let m = Ct2Model::parse(&bytes).unwrap();
        assert_eq!(m.spec, "WhisperSpec");
        assert_eq!(m.revision, 3);
        let e = m.get("decoder/embeddings/weight").unwrap();
        assert_eq!(e.dims, [3, 2]);
        assert_eq!(e.to_f32().unwrap(), [1.0, -2.0, 0.5, 4.0, 5.0, 6.0]);
        assert_eq!(m.get("encoder/num_heads").unwrap().as_int(), Some(6));
        assert_eq!(m.get("decoder/projection/weight").unwrap().dims, [3, 2]);
        assert!(m.get("nope").is_none());
    }

    #[test]
    fn rejects_truncated_and_inconsistent_files() {
        let w = f16_bytes(&[1.0, 2.0]);
        let bytes = write("WhisperSpec", 3, &[("a", &[2], DType::F16, &w)], &[]);
        for cut in [0, 3, 10, bytes.len() - 5] {
            assert!(Ct2Model::parse(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let bad = write("WhisperSpec", 3, &[("a", &[3], DType::F16, &w)], &[]);
        assert!(matches!(Ct2Model::parse(&bad), Err(Ct2Error::Size(_))));
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(matches!(
            Ct2Model::parse(&trailing),
            Err(Ct2Error::Trailing(1))
        ));
        let mut v1 = bytes;
        v1[0] = 1;
        assert!(matches!(Ct2Model::parse(&v1), Err(Ct2Error::Version(1))));
    }
}
