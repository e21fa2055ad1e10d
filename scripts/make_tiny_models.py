"""Build tiny, randomly initialised "full tier" model folders for tests and offline demos.

Usage::

    python scripts/make_tiny_models.py OUTDIR [--text-label positive] [--voice-label angry]
        [--asr-kind seaco|plain] [--asr-token 好] [--punc ，] [--sensevoice]
        [--per-language-text] [--check]

It prints the ``VOICEMOOD_*=`` lines that point the bot at the folders.

Every folder is laid out like the real hub download and is built with the libraries' own
classes and config loaders, so the production loaders (``funasr.AutoModel`` and
``transformers.from_pretrained``) read it exactly as they read the real model:

========================  ==================================================================
folder                    what it is
========================  ==================================================================
``paraformer-seaco``      funasr ``SeacoParaformer`` (SANM encoder, CIF predictor V3, SANM
                          decoder, LSTM bias encoder) like ``paraformer-zh``; or, with
``paraformer-plain``      ``--asr-kind plain``, a plain ``Paraformer`` (CIF predictor V2);
                          ``config.yaml``, ``model.pt``, ``tokens.json``, ``am.mvn``
``fsmn-vad``              funasr ``FsmnVADStreaming`` (FSMN encoder), ``am.mvn``
``ct-punc``               funasr ``CTTransformer`` punctuation model, ``tokens.json``
``emotion2vec``           funasr ``Emotion2vec`` with a 9-way head, ``tokens.txt`` holding
                          the emotion2vec+ labels (``生气/angry`` ...)
``text-emotion``          transformers ``BertForSequenceClassification`` + ``BertTokenizer``
``text-emotion-en``       a second one (3 classes, ``negative``/``neutral``/``positive``),
                          for per-language text models (``en=...``)
``sensevoice``            funasr ``SenseVoiceSmall`` (SenseVoice encoder, CTC head),
                          ``config.yaml``, ``model.pt``, ``tokens.json``, ``am.mvn``; built
                          only when asked (``--sensevoice``, :func:`build_sensevoice`)
========================  ==================================================================

The weights are random (seeded), but the output layers are set so a test knows what comes
out: the weight of each output layer is zeroed and its bias picks the winner.

* ASR: the decoder always emits ``asr_token`` (default ``好``); the CIF predictor fires about
  once per 4 encoder frames (~4 tokens a second), so a 1 s clip gives ``好好好好``-like text
  (SeACo-Paraformer spaces it: ``好 好 好 好``).
* VAD: every frame is speech, so each clip is one segment.
* Punctuation: ``punc`` (default ``，``) after every token; funasr turns the final one into
  ``。``, so the pipeline output looks like ``好，好，好。``.
* emotion2vec: ``voice_label`` wins with p ≈ 0.997 (e^8 against eight classes at e^0).
* Text: ``text_label`` (one of ``negative``, ``neutral``, ``positive``, ``angry``) wins with
  p ≈ 0.999; the second classifier's ``en_text_label`` likewise.
* SenseVoice: the four query frames come out as ``<|lang|><|EMOTION|><|Speech|><|withitn|>``
  and every speech frame as the one text token, so any clip gives e.g.
  ``<|en|><|HAPPY|><|Speech|><|withitn|>Hello world.`` Its encoder blocks are made identity
  maps (attention and feed-forward outputs zeroed), its CMVN zeroes the features, and its
  query embeddings are one-hot spikes that the CTC head reads; the head's text bias sits
  above what the position encoding alone can reach (checked when it is built).

The whole set is ~2 MB and builds in a few seconds on CPU. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import sys
from pathlib import Path
from typing import Any

import torch

#: emotion2vec+ label list, in the order of the real ``tokens.txt``.
EMOTION2VEC_LABELS: tuple[str, ...] = (
    "生气/angry",
    "厌恶/disgusted",
    "恐惧/fearful",
    "开心/happy",
    "中立/neutral",
    "其他/other",
    "难过/sad",
    "吃惊/surprised",
    "<unk>",
)
#: id2label of the tiny text classifier.
TEXT_LABELS: tuple[str, ...] = ("negative", "neutral", "positive", "angry")
#: id2label of the second tiny classifier, shaped like an English 3-class sentiment model.
TEXT_LABELS_3: tuple[str, ...] = ("negative", "neutral", "positive")
#: Characters of the tiny Paraformer (after <blank>, <s>, </s>; <unk> comes last).
ASR_CHARS = "好的我你是不了在有人这个们中来上大为和国地到以说时要就出会可也"
#: Latin words after them, so a test can make the "Chinese" model say English.
ASR_WORDS: tuple[str, ...] = ("hello", "fine")
#: Tiny ASR architectures: SeACo-Paraformer (the ``paraformer-zh`` default) or plain.
ASR_KINDS: tuple[str, ...] = ("seaco", "plain")
#: Punctuation classes of ct-punc, in the real model's order.
PUNC_LIST: tuple[str, ...] = ("<unk>", "_", "，", "。", "？", "、")

_SEED = 1234
_FORCE = 8.0  # bias given to the forced output; the others stay 0, so it wins by e^8


def _paraformer_config() -> dict[str, Any]:
    return {
        "model": "Paraformer",
        "model_conf": {
            "ctc_weight": 0.0,
            "lsm_weight": 0.1,
            "length_normalized_loss": True,
            "predictor_weight": 1.0,
            "predictor_bias": 1,
            "sampling_ratio": 0.75,
        },
        "encoder": "SANMEncoder",
        "encoder_conf": {
            "output_size": 32,
            "attention_heads": 2,
            "linear_units": 64,
            "num_blocks": 2,
            "dropout_rate": 0.1,
            "positional_dropout_rate": 0.1,
            "attention_dropout_rate": 0.1,
            "input_layer": "pe",
            "pos_enc_class": "SinusoidalPositionEncoder",
            "normalize_before": True,
            "kernel_size": 11,
            "sanm_shfit": 0,
            "selfattention_layer_type": "sanm",
        },
        "decoder": "ParaformerSANMDecoder",
        "decoder_conf": {
            "attention_heads": 2,
            "linear_units": 64,
            "num_blocks": 2,
            "dropout_rate": 0.1,
            "positional_dropout_rate": 0.1,
            "self_attention_dropout_rate": 0.1,
            "src_attention_dropout_rate": 0.1,
            "att_layer_num": 2,
            "kernel_size": 11,
            "sanm_shfit": 0,
        },
        "predictor": "CifPredictorV2",
        "predictor_conf": {
            "idim": 32,
            "threshold": 1.0,
            "l_order": 1,
            "r_order": 1,
            "tail_threshold": 0.45,
        },
        "frontend": "WavFrontend",
        "frontend_conf": {
            "fs": 16000,
            "window": "hamming",
            "n_mels": 80,
            "frame_length": 25,
            "frame_shift": 10,
            "lfr_m": 7,
            "lfr_n": 6,
            "dither": 0.0,
        },
        "tokenizer": "CharTokenizer",
        "tokenizer_conf": {"unk_symbol": "<unk>", "split_with_space": True},
    }


def _seaco_config(no_bias: int) -> dict[str, Any]:
    """SeACo-Paraformer (``paraformer-zh`` on ModelScope): Paraformer + hotword biasing and a
    CIF predictor (V3) that also yields timestamps."""
    conf = _paraformer_config()
    conf["model"] = "SeacoParaformer"
    conf["model_conf"].update(
        {
            "inner_dim": 32,
            "bias_encoder_type": "lstm",
            "bias_encoder_bid": False,
            "seaco_lsm_weight": 0.1,
            "seaco_length_normalized_loss": True,
            "train_decoder": True,
            "NO_BIAS": no_bias,
        }
    )
    conf["seaco_decoder"] = "ParaformerSANMDecoder"
    conf["seaco_decoder_conf"] = {
        "attention_heads": 2,
        "linear_units": 64,
        "num_blocks": 1,
        "dropout_rate": 0.1,
        "positional_dropout_rate": 0.1,
        "self_attention_dropout_rate": 0.1,
        "src_attention_dropout_rate": 0.1,
        "kernel_size": 11,
        "sanm_shfit": 0,
        "use_output_layer": False,
        "wo_input_layer": True,
    }
    conf["predictor"] = "CifPredictorV3"
    conf["predictor_conf"] = {
        "idim": 32,
        "threshold": 1.0,
        "l_order": 1,
        "r_order": 1,
        "tail_threshold": 0.45,
        "smooth_factor2": 0.25,
        "noise_threshold2": 0.01,
        "upsample_times": 3,  # funasr's timestamp code assumes 3
        "use_cif1_cnn": False,
        "upsample_type": "cnn_blstm",
    }
    return conf


def _vad_config() -> dict[str, Any]:
    return {
        "model": "FsmnVADStreaming",
        "model_conf": {
            "sample_rate": 16000,
            "detect_mode": 1,
            "snr_mode": 0,
            "max_end_silence_time": 800,
            "max_start_silence_time": 3000,
            "do_start_point_detection": True,
            "do_end_point_detection": True,
            "window_size_ms": 200,
            "sil_to_speech_time_thres": 150,
            "speech_to_sil_time_thres": 150,
            "speech_2_noise_ratio": 1.0,
            "do_extend": 1,
            "lookback_time_start_point": 200,
            "lookahead_time_end_point": 100,
            "max_single_segment_time": 60000,
            "snr_thres": -100.0,
            "noise_frame_num_used_for_snr": 100,
            "decibel_thres": -100.0,
            "speech_noise_thres": 0.6,
            "fe_prior_thres": 0.0001,
            "silence_pdf_num": 1,
            "sil_pdf_ids": [0],
            "speech_noise_thresh_low": -0.1,
            "speech_noise_thresh_high": 0.3,
            "output_frame_probs": False,
            "frame_in_ms": 10,
            "frame_length_ms": 25,
        },
        "encoder": "FSMN",
        "encoder_conf": {
            "input_dim": 400,
            "input_affine_dim": 16,
            "fsmn_layers": 2,
            "linear_dim": 16,
            "proj_dim": 8,
            "lorder": 4,
            "rorder": 0,
            "lstride": 1,
            "rstride": 0,
            "output_affine_dim": 16,
            "output_dim": 8,
        },
        "frontend": "WavFrontendOnline",
        "frontend_conf": {
            "fs": 16000,
            "window": "hamming",
            "n_mels": 80,
            "frame_length": 25,
            "frame_shift": 10,
            "dither": 0.0,
            "lfr_m": 5,
            "lfr_n": 1,
        },
    }


def _punc_config() -> dict[str, Any]:
    return {
        "model": "CTTransformer",
        "model_conf": {
            "ignore_id": 0,
            "embed_unit": 32,
            "att_unit": 32,
            "dropout_rate": 0.1,
            "punc_list": list(PUNC_LIST),
            "punc_weight": [1.0] * len(PUNC_LIST),
            "sentence_end_id": 3,
        },
        "encoder": "SANMEncoder",
        "encoder_conf": {
            "input_size": 32,
            "output_size": 32,
            "attention_heads": 2,
            "linear_units": 64,
            "num_blocks": 1,
            "dropout_rate": 0.1,
            "positional_dropout_rate": 0.1,
            "attention_dropout_rate": 0.0,
            "input_layer": "pe",
            "pos_enc_class": "SinusoidalPositionEncoder",
            "normalize_before": True,
            "kernel_size": 11,
            "sanm_shfit": 0,
            "selfattention_layer_type": "sanm",
            "padding_idx": 0,
        },
        "tokenizer": "CharTokenizer",
        "tokenizer_conf": {"unk_symbol": "<unk>"},
    }


def _emotion2vec_config() -> dict[str, Any]:
    return {
        "model": "Emotion2vec",
        "model_conf": {
            "loss_beta": 0.0,
            "loss_scale": None,
            "depth": 1,
            "start_drop_path_rate": 0.0,
            "end_drop_path_rate": 0.0,
            "num_heads": 2,
            "norm_eps": 1e-05,
            "norm_affine": True,
            "encoder_dropout": 0.1,
            "post_mlp_drop": 0.1,
            "attention_dropout": 0.1,
            "activation_dropout": 0.0,
            "dropout_input": 0.0,
            "layerdrop": 0.05,
            "embed_dim": 32,
            "mlp_ratio": 2.0,
            "layer_norm_first": False,
            "average_top_k_layers": 1,
            "end_of_block_targets": False,
            "clone_batch": 1,
            "normalize": True,
            "modalities": {
                "audio": {
                    "type": "AUDIO",
                    "prenet_depth": 1,
                    "prenet_layerdrop": 0.05,
                    "prenet_dropout": 0.1,
                    "start_drop_path_rate": 0.0,
                    "end_drop_path_rate": 0.0,
                    "num_extra_tokens": 2,
                    "init_extra_token_zero": True,
                    "mask_noise_std": 0.01,
                    "mask_prob_min": None,
                    "mask_prob": 0.5,
                    "inverse_mask": False,
                    "mask_prob_adjust": 0.05,
                    "keep_masked_pct": 0.0,
                    "mask_length": 5,
                    "add_masks": False,
                    "remove_masks": False,
                    "mask_dropout": 0.0,
                    "encoder_zero_mask": True,
                    "mask_channel_prob": 0.0,
                    "mask_channel_length": 64,
                    "ema_local_encoder": False,
                    "local_grad_mult": 1.0,
                    "use_alibi_encoder": True,
                    "alibi_scale": 1.0,
                    "learned_alibi": False,
                    "alibi_max_pos": None,
                    "learned_alibi_scale": True,
                    "learned_alibi_scale_per_head": True,
                    "learned_alibi_scale_per_layer": False,
                    "num_alibi_heads": 2,
                    "model_depth": 1,
                    "decoder": None,
                    "extractor_mode": "layer_norm",
                    # Same strides as the real model (320x: one frame per 20 ms), narrow
                    # channels.
                    "feature_encoder_spec": (
                        "[(16, 10, 5)] + [(16, 3, 2)] * 4 + [(16, 2, 2)] + [(16, 2, 2)]"
                    ),
                    "conv_pos_width": 15,
                    "conv_pos_groups": 2,
                    "conv_pos_depth": 1,
                    "conv_pos_pre_ln": False,
                }
            },
        },
        "tokenizer": "CharTokenizer",
        "tokenizer_conf": {"unk_symbol": "<unk>", "split_with_space": True},
    }


#: Rich-text tags of SenseVoice, in the real model's spelling.
SENSEVOICE_LANGUAGES: tuple[str, ...] = ("zh", "en", "yue", "ja", "ko", "nospeech")
SENSEVOICE_EMOTIONS: tuple[str, ...] = ("HAPPY", "SAD", "ANGRY", "NEUTRAL", "FEARFUL",
                                        "DISGUSTED", "SURPRISED", "EMO_UNKNOWN")
SENSEVOICE_EVENTS: tuple[str, ...] = ("Speech", "BGM", "Laughter", "Applause")
#: Feature size of the tiny SenseVoice: 8 mel bins x 4 stacked frames = the encoder width,
#: so every encoder block, the first included, keeps its residual path.
_SV_MELS, _SV_LFR, _SV_DIM = 8, 4, 32


def _sensevoice_config() -> dict[str, Any]:
    return {
        "model": "SenseVoiceSmall",
        "model_conf": {"length_normalized_loss": True, "sos": 1, "eos": 2, "ignore_id": -1},
        "input_size": _SV_DIM,
        "encoder": "SenseVoiceEncoderSmall",
        "encoder_conf": {
            "output_size": _SV_DIM,
            "attention_heads": 2,
            "linear_units": 64,
            "num_blocks": 2,
            "tp_blocks": 1,
            "dropout_rate": 0.1,
            "positional_dropout_rate": 0.1,
            "attention_dropout_rate": 0.1,
            "input_layer": "pe",
            "pos_enc_class": "SinusoidalPositionEncoder",
            "normalize_before": True,
            "kernel_size": 11,
            "sanm_shfit": 0,
            "selfattention_layer_type": "sanm",
        },
        "frontend": "WavFrontend",
        "frontend_conf": {
            "fs": 16000,
            "window": "hamming",
            "n_mels": _SV_MELS,
            "frame_length": 25,
            "frame_shift": 10,
            "lfr_m": _SV_LFR,
            "lfr_n": _SV_LFR,
            "dither": 0.0,
        },
        "tokenizer": "CharTokenizer",
        "tokenizer_conf": {"unk_symbol": "<unk>", "split_with_space": True},
    }


def _write_yaml(path: Path, conf: dict[str, Any]) -> None:
    from omegaconf import OmegaConf

    OmegaConf.save(OmegaConf.create(conf), path)


def _write_am_mvn(path: Path, dim: int, shift: float, scale: float) -> None:
    """Kaldi nnet1 CMVN in the text layout funasr's ``load_cmvn`` parses."""
    shifts = " ".join([f"{shift:g}"] * dim)
    scales = " ".join([f"{scale:g}"] * dim)
    path.write_text(
        "<Nnet>\n"
        f"<Splice> {dim} {dim}\n[ 0 ]\n"
        f"<AddShift> {dim} {dim}\n<LearnRateCoef> 0 [ {shifts} ]\n"
        f"<Rescale> {dim} {dim}\n<LearnRateCoef> 0 [ {scales} ]\n"
        "</Nnet>\n",
        encoding="utf-8",
    )


@contextlib.contextmanager
def _quiet_funasr():
    """Keep funasr's prints and root-logger changes out of the caller's output."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.setLevel(level)
        root.handlers[:] = handlers


def _build_funasr(model_dir: Path) -> torch.nn.Module:
    """Instantiate the model described by ``model_dir/config.yaml`` the way AutoModel does."""
    from omegaconf import OmegaConf

    conf = OmegaConf.to_container(OmegaConf.load(model_dir / "config.yaml"), resolve=True)
    assert isinstance(conf, dict)
    # The same file names funasr's hub loader picks up from a model folder.
    for name in ("tokens.json", "tokens.txt"):
        if (model_dir / name).exists():
            conf.setdefault("tokenizer_conf", {})["token_list"] = str(model_dir / name)
    if (model_dir / "am.mvn").exists():
        conf.setdefault("frontend_conf", {})["cmvn_file"] = str(model_dir / "am.mvn")
    with _quiet_funasr():
        from funasr import AutoModel

        # model_conf is present, so build_model does not touch any hub; init_param is unset,
        # so the weights stay as the seeded random initialisation.
        # ncpu: funasr would otherwise set torch's thread count to 4 for the whole process.
        model, _ = AutoModel.build_model(
            **conf, device="cpu", seed=_SEED, disable_update=True, ncpu=torch.get_num_threads()
        )
    return model


def _force(linear: torch.nn.Linear, index: int, value: float = _FORCE) -> None:
    """Make output ``index`` of ``linear`` win regardless of its input."""
    with torch.no_grad():
        linear.weight.zero_()
        linear.bias.zero_()
        linear.bias[index] = value


def _save_funasr(model: torch.nn.Module, model_dir: Path) -> None:
    torch.save(model.state_dict(), model_dir / "model.pt")


def build_paraformer(model_dir: Path, token: str = "好", kind: str = "seaco") -> Path:
    """Tiny Paraformer whose decoder always emits ``token``.

    ``kind="seaco"`` builds a SeACo-Paraformer (what ``paraformer-zh`` is on ModelScope: it
    outputs characters separated by spaces, ``"好 好 好"``); ``kind="plain"`` a plain
    Paraformer (``"好好好"``).
    """
    if kind not in ASR_KINDS:
        raise ValueError(f"asr kind {kind!r} not in {ASR_KINDS}")
    model_dir.mkdir(parents=True, exist_ok=True)
    tokens = ["<blank>", "<s>", "</s>", *ASR_CHARS, *ASR_WORDS, "<unk>"]
    if token not in tokens[3:-1]:
        raise ValueError(f"asr token {token!r} is not in the tiny vocabulary "
                         f"{ASR_CHARS!r} + {ASR_WORDS!r}")
    (model_dir / "tokens.json").write_text(json.dumps(tokens, ensure_ascii=False), "utf-8")
    _write_am_mvn(model_dir / "am.mvn", 80 * 7, shift=-8.0, scale=0.25)
    conf = _seaco_config(no_bias=len(tokens) - 1) if kind == "seaco" else _paraformer_config()
    _write_yaml(model_dir / "config.yaml", conf)
    torch.manual_seed(_SEED)
    model = _build_funasr(model_dir)
    _force(model.decoder.output_layer, tokens.index(token))
    with torch.no_grad():
        # alpha = sigmoid(-1.1) ~ 0.25 per 60 ms encoder frame: one token per ~240 ms.
        model.predictor.cif_output.weight.zero_()
        model.predictor.cif_output.bias.fill_(-1.1)
    _save_funasr(model, model_dir)
    return model_dir


def build_vad(model_dir: Path) -> Path:
    """Tiny FSMN VAD that calls every frame speech (pdf 0 is silence)."""
    model_dir.mkdir(parents=True, exist_ok=True)
    _write_am_mvn(model_dir / "am.mvn", 80 * 5, shift=-8.0, scale=0.25)
    _write_yaml(model_dir / "config.yaml", _vad_config())
    torch.manual_seed(_SEED)
    model = _build_funasr(model_dir)
    _force(model.encoder.out_linear2.linear, 1)
    _save_funasr(model, model_dir)
    return model_dir


def build_punc(model_dir: Path, punc: str = "，") -> Path:
    """Tiny CT-Transformer that puts ``punc`` after every token."""
    model_dir.mkdir(parents=True, exist_ok=True)
    tokens = ["<blank>", "<s>", "</s>", *ASR_CHARS, "hello", "world", "<unk>"]
    (model_dir / "tokens.json").write_text(json.dumps(tokens, ensure_ascii=False), "utf-8")
    _write_yaml(model_dir / "config.yaml", _punc_config())
    torch.manual_seed(_SEED)
    model = _build_funasr(model_dir)
    _force(model.decoder, PUNC_LIST.index(punc))
    _save_funasr(model, model_dir)
    return model_dir


def build_emotion2vec(model_dir: Path, label: str = "angry") -> Path:
    """Tiny emotion2vec+ whose head picks ``label`` (the English half of a label)."""
    model_dir.mkdir(parents=True, exist_ok=True)
    english = [lab.split("/")[-1] for lab in EMOTION2VEC_LABELS]
    if label not in english:
        raise ValueError(f"voice label {label!r} not in {english}")
    (model_dir / "tokens.txt").write_text("\n".join(EMOTION2VEC_LABELS) + "\n", "utf-8")
    _write_yaml(model_dir / "config.yaml", _emotion2vec_config())
    torch.manual_seed(_SEED)
    model = _build_funasr(model_dir)
    _force(model.proj, english.index(label))
    _save_funasr(model, model_dir)
    return model_dir


def build_sensevoice(model_dir: Path, language: str = "en", emotion: str = "HAPPY",
                     text: str = "Hello world.") -> Path:
    """Tiny SenseVoiceSmall that answers every clip with
    ``<|language|><|emotion|><|Speech|><|withitn|>text`` (``<|woitn|>`` without ITN).

    ``text`` is one token of the tiny vocabulary, so it may hold spaces and punctuation.
    """
    if language not in SENSEVOICE_LANGUAGES:
        raise ValueError(f"language {language!r} not in {SENSEVOICE_LANGUAGES}")
    if emotion not in SENSEVOICE_EMOTIONS:
        raise ValueError(f"emotion {emotion!r} not in {SENSEVOICE_EMOTIONS}")
    model_dir.mkdir(parents=True, exist_ok=True)
    tags = [f"<|{t}|>" for t in (*SENSEVOICE_LANGUAGES, *SENSEVOICE_EMOTIONS,
                                 *SENSEVOICE_EVENTS, "withitn", "woitn")]
    tokens = ["<blank>", "<s>", "</s>", *tags, text, "<unk>"]
    (model_dir / "tokens.json").write_text(json.dumps(tokens, ensure_ascii=False), "utf-8")
    # Scale 0: every speech frame reaches the encoder as zeros, whatever the audio.
    _write_am_mvn(model_dir / "am.mvn", _SV_DIM, shift=0.0, scale=0.0)
    _write_yaml(model_dir / "config.yaml", _sensevoice_config())
    torch.manual_seed(_SEED)
    model = _build_funasr(model_dir)
    encoder = model.encoder
    with torch.no_grad():
        for layer in [*encoder.encoders0, *encoder.encoders, *encoder.tp_encoders]:
            # Zero values and outputs: attention, FSMN memory and feed-forward add nothing,
            # so each block passes its input through its residual path unchanged.
            for linear in (layer.self_attn.linear_q_k_v, layer.self_attn.linear_out,
                           layer.feed_forward.w_2):
                linear.weight.zero_()
                linear.bias.zero_()
        # Query embeddings (funasr: index 0 = "auto" and lid_dict's languages, 1 and 2 = the
        # emotion and event queries, 14/15 = with/without ITN): a spike on its own dimension.
        spike = 10.0
        model.embed.weight.zero_()
        dims = {"language": 0, "emotion": 1, "event": 2, "withitn": 3, "woitn": 4}
        for index in (0, *model.lid_dict.values()):
            model.embed.weight[index, dims["language"]] = spike
        model.embed.weight[1, dims["emotion"]] = spike
        model.embed.weight[2, dims["event"]] = spike
        model.embed.weight[model.textnorm_dict["withitn"], dims["withitn"]] = spike
        model.embed.weight[model.textnorm_dict["woitn"], dims["woitn"]] = spike
        # What a speech frame looks like after the encoder: the layer norms of the position
        # encoding alone (up to ~10 minutes of frames).
        frames = torch.zeros(1, 15_000, _SV_DIM)
        plain = encoder.tp_norm(encoder.after_norm(encoder.embed(frames)))[0, :, :5]
        reach = float(plain.max())
        query = encoder.tp_norm(encoder.after_norm(encoder.embed(
            model.embed.weight[[0]][None] * _SV_DIM ** 0.5)))[0, 0, 0]
        gain = 4.0
        head = model.ctc.ctc_lo
        head.weight.zero_()
        head.bias.zero_()
        for dim, tag in ((dims["language"], language), (dims["emotion"], emotion),
                         (dims["event"], "Speech"), (dims["withitn"], "withitn"),
                         (dims["woitn"], "woitn")):
            head.weight[tokens.index(f"<|{tag}|>"), dim] = gain
        head.bias[tokens.index(text)] = gain * (reach + 0.5)
        if gain * float(query) < gain * (reach + 1.5):
            raise RuntimeError("tiny SenseVoice: the query spike does not clear the text bias")
    _save_funasr(model, model_dir)
    return model_dir


_TEXT_VOCAB = (
    ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    + list("我你他好的是不很开心难过生气今天天气真太了啊吗呢")
    + ["i", "am", "so", "happy", "sad", "angry", "today", "the", "is", "not", "very", "good", "bad"]
    + list(".,!?")
)


def build_text_classifier(model_dir: Path, label: str = "positive",
                          labels: tuple[str, ...] = TEXT_LABELS) -> Path:
    """Tiny BERT sequence classifier whose classifier picks ``label`` out of ``labels``
    (default the 4 :data:`TEXT_LABELS`; :data:`TEXT_LABELS_3` for an English-style
    3-class sentiment model)."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    if label not in labels:
        raise ValueError(f"text label {label!r} not in {labels}")
    model_dir.mkdir(parents=True, exist_ok=True)
    vocab_path = model_dir / "vocab.txt"
    vocab_path.write_text("\n".join(_TEXT_VOCAB) + "\n", encoding="utf-8")
    config = BertConfig(
        vocab_size=len(_TEXT_VOCAB),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={name: i for i, name in enumerate(labels)},
    )
    torch.manual_seed(_SEED)
    model = BertForSequenceClassification(config)
    _force(model.classifier, labels.index(label))
    model.save_pretrained(model_dir)
    # transformers 5 ignores ``vocab_file=``; ``vocab=`` is the argument that is read.
    tokenizer = BertTokenizer(vocab=str(vocab_path), do_lower_case=True)
    tokenizer.save_pretrained(model_dir)
    return model_dir


def build_tiny_models(
    outdir: Path,
    text_label: str = "positive",
    voice_label: str = "angry",
    asr_token: str = "好",
    punc: str = "，",
    asr_kind: str = "seaco",
    sensevoice: bool = False,
    per_language_text: bool = False,
) -> dict[str, str]:
    """Build the tiny model folders under ``outdir``.

    Returns the ``VOICEMOOD_*`` settings (environment variable name -> value) that make the
    bot run the full tier on them. ``sensevoice`` makes the tiny SenseVoice (English,
    HAPPY, "Hello world.") the recogniser; ``per_language_text`` sets the text model to
    ``zh=<4-class classifier>,en=<3-class classifier forced to negative>``.
    """
    outdir = Path(outdir).resolve()
    if sensevoice:
        asr = build_sensevoice(outdir / "sensevoice")
    else:
        asr = build_paraformer(outdir / f"paraformer-{asr_kind}", token=asr_token,
                               kind=asr_kind)
    vad = build_vad(outdir / "fsmn-vad")
    punc_dir = build_punc(outdir / "ct-punc", punc=punc)
    e2v = build_emotion2vec(outdir / "emotion2vec", label=voice_label)
    text = str(build_text_classifier(outdir / "text-emotion", label=text_label))
    if per_language_text:
        en = build_text_classifier(outdir / "text-emotion-en", label="negative",
                                   labels=TEXT_LABELS_3)
        text = f"zh={text},en={en}"
    return {
        "VOICEMOOD_ASR_BACKEND": "funasr",
        "VOICEMOOD_ASR_MODEL": str(asr),
        "VOICEMOOD_VAD_MODEL": str(vad),
        "VOICEMOOD_PUNC_MODEL": str(punc_dir),
        "VOICEMOOD_TEXT_EMOTION_BACKEND": "transformers",
        "VOICEMOOD_TEXT_EMOTION_MODEL": text,
        "VOICEMOOD_VOICE_EMOTION_BACKEND": "emotion2vec",
        "VOICEMOOD_VOICE_EMOTION_MODEL": str(e2v),
    }


def check_funasr_dir(model_dir: Path) -> list[str]:
    """Load ``model_dir`` with ``funasr.AutoModel`` and list every weight that did not load.

    funasr only prints "miss key" for a parameter the checkpoint lacks and silently skips a
    shape mismatch, so this compares the loaded state dict with ``model.pt`` tensor by
    tensor. An empty list means every parameter came from the file.
    """
    with _quiet_funasr():
        from funasr import AutoModel

        auto = AutoModel(model=str(model_dir), device="cpu", disable_update=True,
                         disable_pbar=True, log_level="ERROR", ncpu=torch.get_num_threads())
    saved = torch.load(model_dir / "model.pt", map_location="cpu")
    problems = []
    for key, value in auto.model.state_dict().items():
        if key not in saved:
            problems.append(f"{key}: not in model.pt")
        elif saved[key].shape != value.shape or not torch.equal(saved[key], value):
            problems.append(f"{key}: differs from model.pt")
    return problems


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--text-label", default="positive", choices=TEXT_LABELS)
    parser.add_argument(
        "--voice-label", default="angry", choices=[x.split("/")[-1] for x in EMOTION2VEC_LABELS]
    )
    parser.add_argument("--asr-token", default="好", choices=list(ASR_CHARS))
    parser.add_argument("--punc", default="，", choices=[p for p in PUNC_LIST if p != "<unk>"])
    parser.add_argument("--asr-kind", default="seaco", choices=ASR_KINDS)
    parser.add_argument("--sensevoice", action="store_true",
                        help="a tiny SenseVoice as the recogniser instead of Paraformer")
    parser.add_argument("--per-language-text", action="store_true",
                        help="zh= and en= text classifiers instead of one")
    parser.add_argument(
        "--check", action="store_true", help="reload the funasr folders and compare every weight"
    )
    args = parser.parse_args(argv)
    env = build_tiny_models(
        args.outdir,
        text_label=args.text_label,
        voice_label=args.voice_label,
        asr_token=args.asr_token,
        punc=args.punc,
        asr_kind=args.asr_kind,
        sensevoice=args.sensevoice,
        per_language_text=args.per_language_text,
    )
    if args.check:
        for name in ("VOICEMOOD_ASR_MODEL", "VOICEMOOD_VAD_MODEL", "VOICEMOOD_PUNC_MODEL",
                     "VOICEMOOD_VOICE_EMOTION_MODEL"):
            problems = check_funasr_dir(Path(env[name]))
            if problems:
                print(f"{env[name]}: {len(problems)} weights did not load", file=sys.stderr)
                print("\n".join(problems[:20]), file=sys.stderr)
                return 1
    for key, value in env.items():
        print(f"{key}={value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
