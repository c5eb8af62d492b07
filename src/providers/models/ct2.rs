//! Reader for CTranslate2's `model.bin`: a flat list of named tensors, then aliases.

use std::collections::HashMap;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Ct2Error {
    #[error("model file ends early at byte {0}")]
    Truncated(usize),
    #[error("unsupported model format version {0}")]
    Version(u32),
    #[error("variable {name:?} has unknown dtype {dtype}")]
    DType { name: String, dtype: u8 },
    #[error("variable {name:?}: {bytes} bytes do not fit dims {dims:?}")]
    Size {
        name: String,
        dims: Vec<usize>,
        bytes: usize,
    },
    #[error("a name is not UTF-8 at byte {0}")]
    Name(usize),
    #[error("{0} trailing bytes after the aliases")]
    Trailing(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    F32,
    I8,
    I16,
    I32,
    F16,
}

impl DType {
    fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => DType::F32,
            1 => DType::I8,
            2 => DType::I16,
            3 => DType::I32,
            4 => DType::F16,
            _ => return None,
        })
    }

    pub fn size(self) -> usize {
        match self {
            DType::I8 => 1,
            DType::I16 | DType::F16 => 2,
            DType::F32 | DType::I32 => 4,
        }
    }
}

#[derive(Debug)]
pub struct Variable<'a> {
    pub dims: Vec<usize>,
    pub dtype: DType,
    pub data: &'a [u8],
}

impl Variable<'_> {
    /// The value of a scalar integer (e.g. `num_heads`).
    pub fn as_int(&self) -> Option<i64> {
        if !self.dims.is_empty() {
            return None;
        }
        let d = self.data;
        Some(match self.dtype {
            DType::I8 => i64::from(*d.first()? as i8),
            DType::I16 => i64::from(i16::from_le_bytes(d.get(..2)?.try_into().ok()?)),
            DType::I32 => i64::from(i32::from_le_bytes(d.get(..4)?.try_into().ok()?)),
            DType::F32 | DType::F16 => return None,
        })
    }
}

#[derive(Debug)]
pub struct Ct2Model<'a> {
    pub spec: String,
    pub variables: HashMap<String, Variable<'a>>,
    /// alias → target variable name.
    pub aliases: HashMap<String, String>,
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Ct2Error> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.buf.len())
            .ok_or(Ct2Error::Truncated(self.pos))?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, Ct2Error> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, Ct2Error> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, Ct2Error> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// `u16 length` (counting a trailing NUL), then the bytes.
    fn string(&mut self) -> Result<String, Ct2Error> {
        let at = self.pos;
        let len = usize::from(self.u16()?);
        let bytes = self.take(len)?;
        let bytes = bytes.strip_suffix(&[0]).unwrap_or(bytes);
        String::from_utf8(bytes.to_vec()).map_err(|_| Ct2Error::Name(at))
    }
}

impl<'a> Ct2Model<'a> {
    pub fn parse(buf: &'a [u8]) -> Result<Self, Ct2Error> {
        let mut c = Cursor { buf, pos: 0 };
        let version = c.u32()?;
        if !(5..=6).contains(&version) {
            return Err(Ct2Error::Version(version));
        }
        let spec = c.string()?;
        let _revision = c.u32()?;
        let count = c.u32()?;
        let mut variables = HashMap::new();
        for _ in 0..count {
            let name = c.string()?;
            let rank = c.u8()?;
            let dims = (0..rank)
                .map(|_| c.u32().map(|d| d as usize))
                .collect::<Result<Vec<_>, _>>()?;
            let code = c.u8()?;
            let dtype = DType::from_code(code).ok_or_else(|| Ct2Error::DType {
                name: name.clone(),
                dtype: code,
            })?;
            let bytes = c.u32()? as usize;
            let elements = dims.iter().try_fold(1usize, |a, d| a.checked_mul(*d));
            if elements.and_then(|e| e.checked_mul(dtype.size())) != Some(bytes) {
                return Err(Ct2Error::Size { name, dims, bytes });
            }
            let data = c.take(bytes)?;
            variables.insert(name, Variable { dims, dtype, data });
        }
        let n_aliases = c.u32()?;
        let mut aliases = HashMap::new();
        for _ in 0..n_aliases {
            let alias = c.string()?;
            let target = c.string()?;
            aliases.insert(alias, target);
        }
        if c.pos != buf.len() {
            return Err(Ct2Error::Trailing(buf.len() - c.pos));
        }
        Ok(Ct2Model {
            spec,
            variables,
            aliases,
        })
    }

    pub fn get(&self, name: &str) -> Option<&Variable<'a>> {
        self.variables
            .get(name)
            .or_else(|| self.variables.get(self.aliases.get(name)?))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn string(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&(s.len() as u16 + 1).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
        out.push(0);
    }

    /// A CTranslate2 file holding `vars` (name, dims, dtype code, data) and `aliases`.
    pub fn write_model(vars: &[(&str, &[u32], u8, Vec<u8>)], aliases: &[(&str, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&6u32.to_le_bytes());
        string(&mut out, "WhisperSpec");
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&(vars.len() as u32).to_le_bytes());
        for (name, dims, dtype, data) in vars {
            string(&mut out, name);
            out.push(dims.len() as u8);
            for d in *dims {
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.push(*dtype);
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

    #[test]
    fn reads_variables_scalars_and_aliases() {
        let buf = write_model(
            &[
                ("decoder/num_heads", &[], 2, 8i16.to_le_bytes().to_vec()),
                ("w", &[2, 3], 4, vec![7; 12]),
            ],
            &[("decoder/projection/weight", "w")],
        );
        let model = Ct2Model::parse(&buf).unwrap();
        assert_eq!(model.spec, "WhisperSpec");
        assert_eq!(model.get("decoder/num_heads").unwrap().as_int(), Some(8));
        let w = model.get("decoder/projection/weight").unwrap();
        assert_eq!(w.dims, vec![2, 3]);
        assert_eq!(w.dtype, DType::F16);
        assert_eq!(w.data.len(), 12);
    }

    #[test]
    fn rejects_truncation_bad_sizes_and_dtypes() {
        let good = write_model(&[("w", &[2], 0, vec![0; 8])], &[]);
        for cut in [3, 20, good.len() - 1] {
            assert!(matches!(
                Ct2Model::parse(&good[..cut]),
                Err(Ct2Error::Truncated(_))
            ));
        }
        let bad_size = write_model(&[("w", &[3], 0, vec![0; 8])], &[]);
        assert!(matches!(
            Ct2Model::parse(&bad_size),
            Err(Ct2Error::Size { .. })
        ));
        let bad_dtype = write_model(&[("w", &[2], 9, vec![0; 8])], &[]);
        assert!(matches!(
            Ct2Model::parse(&bad_dtype),
            Err(Ct2Error::DType { .. })
        ));
        let mut trailing = good.clone();
        trailing.push(1);
        assert_eq!(
            Ct2Model::parse(&trailing).unwrap_err(),
            Ct2Error::Trailing(1)
        );
    }
}
