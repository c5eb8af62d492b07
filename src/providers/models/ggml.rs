//! Writes a CTranslate2 Whisper model as a whisper.cpp ggml file: hyper-parameters, the mel
//! filterbank, the byte vocabulary and the tensors under OpenAI's PyTorch names.

use std::io::Write;

use super::bpe::{BadToken, ByteDecoder};
use super::ct2::{Ct2Model, DType, Variable};
use super::mel;

const MAGIC: i32 = 0x6767_6d6c;
const FTYPE_F16: i32 = 1;
const GGML_F32: i32 = 0;
const GGML_F16: i32 = 1;
/// The first special token: everything before it is plain BPE; whisper.cpp adds the specials.
const END_OF_TEXT: &str = "<|endoftext|>";

#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("the model is a {0}, not a Whisper model")]
    NotWhisper(String),
    #[error("the model has no variable {0:?}")]
    Missing(String),
    #[error("variable {name:?} has shape {dims:?}, expected {expected}")]
    Shape {
        name: String,
        dims: Vec<usize>,
        expected: &'static str,
    },
    #[error("variable {name:?} is {dtype:?}; only f16 and f32 tensors convert")]
    DType { name: String, dtype: DType },
    #[error("the vocabulary has no {END_OF_TEXT} token")]
    NoEndOfText,
    #[error(transparent)]
    Token(#[from] BadToken),
    #[error("writing the model: {0}")]
    Io(#[from] std::io::Error),
}

/// Whisper's hyper-parameters, in the ggml header's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hparams {
    pub n_vocab: usize,
    pub n_audio_ctx: usize,
    pub n_audio_state: usize,
    pub n_audio_head: usize,
    pub n_audio_layer: usize,
    pub n_text_ctx: usize,
    pub n_text_state: usize,
    pub n_text_head: usize,
    pub n_text_layer: usize,
    pub n_mels: usize,
}

/// One output tensor: a (possibly sliced) CTranslate2 variable under its PyTorch name.
struct Tensor<'a> {
    name: String,
    dims: Vec<usize>,
    dtype: DType,
    data: &'a [u8],
    as_f32: bool,
}

fn var<'m, 'a>(model: &'m Ct2Model<'a>, name: &str) -> Result<&'m Variable<'a>, ConvertError> {
    model
        .get(name)
        .ok_or_else(|| ConvertError::Missing(name.to_string()))
}

fn dim(v: &Variable<'_>, name: &str, axis: usize) -> Result<usize, ConvertError> {
    v.dims
        .get(axis)
        .copied()
        .ok_or_else(|| ConvertError::Shape {
            name: name.to_string(),
            dims: v.dims.clone(),
            expected: "more dimensions",
        })
}

fn scalar(model: &Ct2Model<'_>, name: &str) -> Result<usize, ConvertError> {
    let v = var(model, name)?;
    v.as_int()
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| ConvertError::Shape {
            name: name.to_string(),
            dims: v.dims.clone(),
            expected: "a non-negative integer scalar",
        })
}

fn count_layers(model: &Ct2Model<'_>, stack: &str) -> usize {
    let prefix = format!("{stack}/layer_");
    model
        .variables
        .keys()
        .filter_map(|k| {
            k.strip_prefix(&prefix)?
                .split('/')
                .next()?
                .parse::<usize>()
                .ok()
        })
        .map(|n| n + 1)
        .max()
        .unwrap_or(0)
}

impl Hparams {
    pub fn of(model: &Ct2Model<'_>) -> Result<Self, ConvertError> {
        let emb = var(model, "decoder/embeddings/weight")?;
        let enc_pos = var(model, "encoder/position_encodings/encodings")?;
        let dec_pos = var(model, "decoder/position_encodings/encodings")?;
        let conv1 = var(model, "encoder/conv1/weight")?;
        Ok(Hparams {
            n_vocab: dim(emb, "decoder/embeddings/weight", 0)?,
            n_audio_ctx: dim(enc_pos, "encoder/position_encodings/encodings", 0)?,
            n_audio_state: dim(enc_pos, "encoder/position_encodings/encodings", 1)?,
            n_audio_head: scalar(model, "encoder/num_heads")?,
            n_audio_layer: count_layers(model, "encoder"),
            n_text_ctx: dim(dec_pos, "decoder/position_encodings/encodings", 0)?,
            n_text_state: dim(emb, "decoder/embeddings/weight", 1)?,
            n_text_head: scalar(model, "decoder/num_heads")?,
            n_text_layer: count_layers(model, "decoder"),
            n_mels: dim(conv1, "encoder/conv1/weight", 1)?,
        })
    }
}

/// Collects the output tensors, splitting CTranslate2's fused projections.
struct Plan<'m, 'a> {
    model: &'m Ct2Model<'a>,
    tensors: Vec<Tensor<'a>>,
}

impl<'a> Plan<'_, 'a> {
    /// `src` as a whole, under `name`.
    fn whole(&mut self, src: &str, name: String) -> Result<(), ConvertError> {
        let v = var(self.model, src)?;
        let as_f32 = v.dims.len() < 2;
        self.tensors.push(Tensor {
            name,
            dims: v.dims.clone(),
            dtype: v.dtype,
            data: v.data,
            as_f32,
        });
        Ok(())
    }

    /// Part `index` of `parts` equal slices of `src` along its first dimension.
    fn part(
        &mut self,
        src: &str,
        parts: usize,
        index: usize,
        name: String,
    ) -> Result<(), ConvertError> {
        let v = var(self.model, src)?;
        let rows = dim(v, src, 0)?;
        if rows % parts != 0 {
            return Err(ConvertError::Shape {
                name: src.to_string(),
                dims: v.dims.clone(),
                expected: "a first dimension that splits evenly",
            });
        }
        let bytes = v.data.len() / parts;
        let mut dims = v.dims.clone();
        dims[0] = rows / parts;
        self.tensors.push(Tensor {
            name,
            as_f32: dims.len() < 2,
            dims,
            dtype: v.dtype,
            data: &v.data[bytes * index..bytes * (index + 1)],
        });
        Ok(())
    }

    /// `gamma`/`beta` of a CTranslate2 layer norm as `weight`/`bias`.
    fn norm(&mut self, src: &str, dst: &str) -> Result<(), ConvertError> {
        self.whole(&format!("{src}/gamma"), format!("{dst}.weight"))?;
        self.whole(&format!("{src}/beta"), format!("{dst}.bias"))
    }

    fn linear(&mut self, src: &str, dst: &str) -> Result<(), ConvertError> {
        self.whole(&format!("{src}/weight"), format!("{dst}.weight"))?;
        self.whole(&format!("{src}/bias"), format!("{dst}.bias"))
    }

    /// Self-attention: q, k, v fused in `linear_0`; Whisper's key has no bias.
    fn self_attention(&mut self, src: &str, dst: &str) -> Result<(), ConvertError> {
        let (w, b) = (
            format!("{src}/linear_0/weight"),
            format!("{src}/linear_0/bias"),
        );
        self.part(&w, 3, 0, format!("{dst}.query.weight"))?;
        self.part(&b, 3, 0, format!("{dst}.query.bias"))?;
        self.part(&w, 3, 1, format!("{dst}.key.weight"))?;
        self.part(&w, 3, 2, format!("{dst}.value.weight"))?;
        self.part(&b, 3, 2, format!("{dst}.value.bias"))?;
        self.linear(&format!("{src}/linear_1"), &format!("{dst}.out"))
    }

    /// Cross-attention: query in `linear_0`, k and v fused in `linear_1`, output `linear_2`.
    fn cross_attention(&mut self, src: &str, dst: &str) -> Result<(), ConvertError> {
        self.linear(&format!("{src}/linear_0"), &format!("{dst}.query"))?;
        let (w, b) = (
            format!("{src}/linear_1/weight"),
            format!("{src}/linear_1/bias"),
        );
        self.part(&w, 2, 0, format!("{dst}.key.weight"))?;
        self.part(&w, 2, 1, format!("{dst}.value.weight"))?;
        self.part(&b, 2, 1, format!("{dst}.value.bias"))?;
        self.linear(&format!("{src}/linear_2"), &format!("{dst}.out"))
    }

    fn mlp(&mut self, src: &str, dst: &str) -> Result<(), ConvertError> {
        self.linear(&format!("{src}/linear_0"), &format!("{dst}.mlp.0"))?;
        self.linear(&format!("{src}/linear_1"), &format!("{dst}.mlp.2"))?;
        self.norm(&format!("{src}/layer_norm"), &format!("{dst}.mlp_ln"))
    }

    fn build(mut self, hp: &Hparams) -> Result<Vec<Tensor<'a>>, ConvertError> {
        for conv in ["conv1", "conv2"] {
            self.whole(
                &format!("encoder/{conv}/weight"),
                format!("encoder.{conv}.weight"),
            )?;
            self.whole(
                &format!("encoder/{conv}/bias"),
                format!("encoder.{conv}.bias"),
            )?;
            // whisper.cpp adds the conv bias as an (n, 1) column.
            if let Some(t) = self.tensors.last_mut() {
                t.dims.push(1);
                t.as_f32 = true;
            }
        }
        self.whole(
            "encoder/position_encodings/encodings",
            "encoder.positional_embedding".into(),
        )?;
        for n in 0..hp.n_audio_layer {
            let (src, dst) = (format!("encoder/layer_{n}"), format!("encoder.blocks.{n}"));
            self.self_attention(&format!("{src}/self_attention"), &format!("{dst}.attn"))?;
            self.norm(
                &format!("{src}/self_attention/layer_norm"),
                &format!("{dst}.attn_ln"),
            )?;
            self.mlp(&format!("{src}/ffn"), &dst)?;
        }
        self.norm("encoder/layer_norm", "encoder.ln_post")?;
        self.whole(
            "decoder/embeddings/weight",
            "decoder.token_embedding.weight".into(),
        )?;
        self.whole(
            "decoder/position_encodings/encodings",
            "decoder.positional_embedding".into(),
        )?;
        for n in 0..hp.n_text_layer {
            let (src, dst) = (format!("decoder/layer_{n}"), format!("decoder.blocks.{n}"));
            self.self_attention(&format!("{src}/self_attention"), &format!("{dst}.attn"))?;
            self.norm(
                &format!("{src}/self_attention/layer_norm"),
                &format!("{dst}.attn_ln"),
            )?;
            self.cross_attention(&format!("{src}/attention"), &format!("{dst}.cross_attn"))?;
            self.norm(
                &format!("{src}/attention/layer_norm"),
                &format!("{dst}.cross_attn_ln"),
            )?;
            self.mlp(&format!("{src}/ffn"), &dst)?;
        }
        self.norm("decoder/layer_norm", "decoder.ln")?;
        for t in &mut self.tensors {
            if t.name.ends_with("positional_embedding") {
                t.as_f32 = true;
            }
        }
        Ok(self.tensors)
    }
}

pub fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let mant = u32::from(h & 0x3ff);
    match (exp, mant) {
        (0, 0) => f32::from_bits(sign),
        (0, m) => {
            // Subnormal: m × 2⁻²⁴.
            let v = m as f32 / 16_777_216.0;
            if sign != 0 { -v } else { v }
        }
        (0x1f, m) => f32::from_bits(sign | 0x7f80_0000 | (m << 13)),
        (e, m) => f32::from_bits(sign | ((e + 112) << 23) | (m << 13)),
    }
}

fn write_i32(out: &mut impl Write, v: usize) -> Result<(), ConvertError> {
    let v = i32::try_from(v)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "value exceeds i32"))?;
    out.write_all(&v.to_le_bytes())?;
    Ok(())
}

fn write_tensor(out: &mut impl Write, t: &Tensor<'_>) -> Result<(), ConvertError> {
    let bad_dtype = || ConvertError::DType {
        name: t.name.clone(),
        dtype: t.dtype,
    };
    write_i32(out, t.dims.len())?;
    write_i32(out, t.name.len())?;
    out.write_all(&(if t.as_f32 { GGML_F32 } else { GGML_F16 }).to_le_bytes())?;
    for d in t.dims.iter().rev() {
        write_i32(out, *d)?;
    }
    out.write_all(t.name.as_bytes())?;
    match (t.dtype, t.as_f32) {
        (DType::F16, false) | (DType::F32, true) => out.write_all(t.data)?,
        (DType::F16, true) => {
            let mut buf = Vec::with_capacity(t.data.len() * 2);
            for h in t.data.chunks_exact(2) {
                buf.extend_from_slice(&f16_to_f32(u16::from_le_bytes([h[0], h[1]])).to_le_bytes());
            }
            out.write_all(&buf)?;
        }
        _ => return Err(bad_dtype()),
    }
    Ok(())
}

/// Converts `model` (with `vocabulary`, one GPT-2 token per line) into whisper.cpp's format.
pub fn convert(
    model: &Ct2Model<'_>,
    vocabulary: &str,
    out: &mut impl Write,
) -> Result<Hparams, ConvertError> {
    if model.spec != "WhisperSpec" {
        return Err(ConvertError::NotWhisper(model.spec.clone()));
    }
    let hp = Hparams::of(model)?;
    let tensors = Plan {
        model,
        tensors: Vec::new(),
    }
    .build(&hp)?;
    let tokens: Vec<&str> = vocabulary.split('\n').collect();
    let n_plain = tokens
        .iter()
        .position(|t| *t == END_OF_TEXT)
        .ok_or(ConvertError::NoEndOfText)?;

    out.write_all(&MAGIC.to_le_bytes())?;
    for v in [
        hp.n_vocab,
        hp.n_audio_ctx,
        hp.n_audio_state,
        hp.n_audio_head,
        hp.n_audio_layer,
        hp.n_text_ctx,
        hp.n_text_state,
        hp.n_text_head,
        hp.n_text_layer,
        hp.n_mels,
    ] {
        write_i32(out, v)?;
    }
    out.write_all(&FTYPE_F16.to_le_bytes())?;

    write_i32(out, mel::N_MELS)?;
    write_i32(out, mel::N_BINS)?;
    for w in mel::filterbank() {
        out.write_all(&w.to_le_bytes())?;
    }

    let decoder = ByteDecoder::default();
    write_i32(out, n_plain)?;
    for (i, token) in tokens[..n_plain].iter().enumerate() {
        let bytes = decoder.decode(i, token)?;
        write_i32(out, bytes.len())?;
        out.write_all(&bytes)?;
    }

    for t in &tensors {
        write_tensor(out, t)?;
    }
    Ok(hp)
}

#[cfg(test)]
mod tests {
    use super::super::ct2::tests::write_model;
    use super::*;

    #[test]
    fn f16_values_convert_exactly() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x3555), 0.333_251_95);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert!(f16_to_f32(0x7c00).is_infinite());
        assert_eq!(f16_to_f32(0x8000).to_bits(), 0x8000_0000);
    }

    fn f16s(n: usize, start: u16) -> Vec<u8> {
        (0..n as u16)
            .flat_map(|i| (start + i).to_le_bytes())
            .collect()
    }

    /// A one-layer Whisper of width 2 (vocabulary of 4, 3 mels) with distinct weights.
    fn tiny_model() -> Vec<u8> {
        let s = 2u32;
        let mut vars: Vec<(String, Vec<u32>, u8, Vec<u8>)> = vec![
            (
                "encoder/num_heads".into(),
                vec![],
                2,
                1i16.to_le_bytes().to_vec(),
            ),
            (
                "decoder/num_heads".into(),
                vec![],
                2,
                1i16.to_le_bytes().to_vec(),
            ),
            (
                "encoder/conv1/weight".into(),
                vec![s, 3, 3],
                4,
                f16s(18, 0x3c00),
            ),
            ("encoder/conv1/bias".into(), vec![s], 4, f16s(2, 0x3c00)),
            (
                "encoder/conv2/weight".into(),
                vec![s, s, 3],
                4,
                f16s(12, 0x3c00),
            ),
            ("encoder/conv2/bias".into(), vec![s], 4, f16s(2, 0x3c00)),
            (
                "encoder/position_encodings/encodings".into(),
                vec![5, s],
                4,
                f16s(10, 0x3c00),
            ),
            (
                "decoder/embeddings/weight".into(),
                vec![4, s],
                4,
                f16s(8, 0x3c00),
            ),
            (
                "decoder/position_encodings/encodings".into(),
                vec![3, s],
                4,
                f16s(6, 0x3c00),
            ),
        ];
        let norm = |vars: &mut Vec<(String, Vec<u32>, u8, Vec<u8>)>, p: &str| {
            vars.push((format!("{p}/gamma"), vec![s], 4, f16s(2, 0x3c00)));
            vars.push((format!("{p}/beta"), vec![s], 4, f16s(2, 0x3c00)));
        };
        let lin = |vars: &mut Vec<(String, Vec<u32>, u8, Vec<u8>)>, p: &str, rows: u32| {
            vars.push((
                format!("{p}/weight"),
                vec![rows, s],
                4,
                f16s((rows * s) as usize, 0x3c00),
            ));
            vars.push((
                format!("{p}/bias"),
                vec![rows],
                4,
                f16s(rows as usize, 0x4000),
            ));
        };
        for stack in ["encoder", "decoder"] {
            let l = format!("{stack}/layer_0");
            lin(&mut vars, &format!("{l}/self_attention/linear_0"), 3 * s);
            lin(&mut vars, &format!("{l}/self_attention/linear_1"), s);
            norm(&mut vars, &format!("{l}/self_attention/layer_norm"));
            lin(&mut vars, &format!("{l}/ffn/linear_0"), s);
            lin(&mut vars, &format!("{l}/ffn/linear_1"), s);
            norm(&mut vars, &format!("{l}/ffn/layer_norm"));
            norm(&mut vars, &format!("{stack}/layer_norm"));
        }
        lin(&mut vars, "decoder/layer_0/attention/linear_0", s);
        lin(&mut vars, "decoder/layer_0/attention/linear_1", 2 * s);
        lin(&mut vars, "decoder/layer_0/attention/linear_2", s);
        norm(&mut vars, "decoder/layer_0/attention/layer_norm");
        let refs: Vec<(&str, &[u32], u8, Vec<u8>)> = vars
            .iter()
            .map(|(n, d, t, b)| (n.as_str(), d.as_slice(), *t, b.clone()))
            .collect();
        write_model(&refs, &[])
    }

    /// Reads back (name, type, dims, data) of every tensor after the vocabulary.
    fn read_tensors(mut b: &[u8]) -> Vec<(String, i32, Vec<i32>, Vec<u8>)> {
        let i32_at = |b: &mut &[u8]| {
            let v = i32::from_le_bytes(b[..4].try_into().unwrap());
            *b = &b[4..];
            v
        };
        let mut out = Vec::new();
        while !b.is_empty() {
            let n_dims = i32_at(&mut b);
            let name_len = i32_at(&mut b) as usize;
            let ty = i32_at(&mut b);
            let dims: Vec<i32> = (0..n_dims).map(|_| i32_at(&mut b)).collect();
            let name = String::from_utf8(b[..name_len].to_vec()).unwrap();
            b = &b[name_len..];
            let n: i32 = dims.iter().product();
            let size = n as usize * if ty == 0 { 4 } else { 2 };
            out.push((name, ty, dims, b[..size].to_vec()));
            b = &b[size..];
        }
        out
    }

    #[test]
    fn converts_a_tiny_model_with_split_projections_and_f32_biases() {
        let buf = tiny_model();
        let model = Ct2Model::parse(&buf).unwrap();
        let vocab = "!\nĠhi\n<|endoftext|>\n<|startoftranscript|>";
        let mut out = Vec::new();
        let hp = convert(&model, vocab, &mut out).unwrap();
        assert_eq!(
            hp,
            Hparams {
                n_vocab: 4,
                n_audio_ctx: 5,
                n_audio_state: 2,
                n_audio_head: 1,
                n_audio_layer: 1,
                n_text_ctx: 3,
                n_text_state: 2,
                n_text_head: 1,
                n_text_layer: 1,
                n_mels: 3,
            }
        );
        assert_eq!(&out[..4], &MAGIC.to_le_bytes());
        // Header (12 i32), mel bank header + data, then the 2 plain tokens.
        let mut at = 12 * 4;
        assert_eq!(&out[at..at + 8], &[80, 0, 0, 0, 201, 0, 0, 0]);
        at += 8 + mel::N_MELS * mel::N_BINS * 4;
        assert_eq!(&out[at..at + 4], &2i32.to_le_bytes());
        assert_eq!(&out[at + 4..at + 9], &[1, 0, 0, 0, b'!']);
        assert_eq!(&out[at + 9..at + 16], &[3, 0, 0, 0, b' ', b'h', b'i']);
        let tensors = read_tensors(&out[at + 16..]);
        let find = |n: &str| {
            tensors
                .iter()
                .find(|t| t.0 == n)
                .unwrap_or_else(|| panic!("{n}"))
        };

        // q/k/v split: each a third of the fused weight, in order.
        let q = find("encoder.blocks.0.attn.query.weight");
        let k = find("encoder.blocks.0.attn.key.weight");
        let v = find("encoder.blocks.0.attn.value.weight");
        assert_eq!((q.1, q.2.clone()), (1, vec![2, 2]));
        assert_eq!(q.3, f16s(4, 0x3c00));
        assert_eq!(k.3, f16s(4, 0x3c04));
        assert_eq!(v.3, f16s(4, 0x3c08));
        assert!(tensors.iter().all(|t| !t.0.ends_with("key.bias")));
        // Value bias is the last third of the fused bias, widened to f32.
        let vb = find("encoder.blocks.0.attn.value.bias");
        assert_eq!(vb.1, 0);
        assert_eq!(vb.3[..4], f16_to_f32(0x4004).to_le_bytes());
        // Cross-attention k/v split in two.
        let ck = find("decoder.blocks.0.cross_attn.key.weight");
        let cv = find("decoder.blocks.0.cross_attn.value.weight");
        assert_eq!(
            (ck.3.clone(), cv.3.clone()),
            (f16s(4, 0x3c00), f16s(4, 0x3c04))
        );
        // Conv bias as an f32 (n, 1) column: dims reversed → [1, n].
        let cb = find("encoder.conv1.bias");
        assert_eq!((cb.1, cb.2.clone()), (0, vec![1, 2]));
        // Conv weight dims reversed; positional embeddings f32.
        assert_eq!(find("encoder.conv1.weight").2, vec![3, 3, 2]);
        assert_eq!(find("decoder.positional_embedding").1, 0);
        assert_eq!(find("encoder.ln_post.weight").1, 0);
        assert_eq!(find("decoder.ln.bias").1, 0);
        assert_eq!(find("decoder.token_embedding.weight").2, vec![2, 4]);
        find("decoder.blocks.0.cross_attn_ln.weight");
        find("decoder.blocks.0.mlp.2.bias");
        find("encoder.blocks.0.mlp_ln.weight");
        // Encoder: convs, position, 15 per layer, ln_post; decoder: embeddings, 24 per layer, ln.
        assert_eq!(tensors.len(), 4 + 1 + 15 + 2 + 2 + 24 + 2);
    }

    #[test]
    fn missing_variables_and_vocabulary_are_errors() {
        let buf = tiny_model();
        let model = Ct2Model::parse(&buf).unwrap();
        let err = convert(&model, "a\nb", &mut Vec::new()).unwrap_err();
        assert!(matches!(err, ConvertError::NoEndOfText));
        let empty = write_model(&[], &[]);
        let model = Ct2Model::parse(&empty).unwrap();
        let err = convert(&model, "", &mut Vec::new()).unwrap_err();
        assert!(matches!(err, ConvertError::Missing(_)));
    }
}
