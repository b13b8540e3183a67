"""Language detection: the daemon hands off what the team cannot answer, so a guess must be
right or None, never confidently wrong; and REPLY_LANGUAGES is read strictly."""

from __future__ import annotations

import re
import time

import pytest

from intercom_responder.core.language import detect_language, language_name, parse_languages

MESSAGES: dict[str, list[str]] = {
    "en": [
        "Hello, I was charged twice for my subscription this month. Can you refund one of them?",
        "The export button does nothing when I click it. I tried Chrome and Firefox.",
        "How do I add a second admin to our workspace?",
        "I'd like to cancel my plan, please.",
        "Where is my order? It was supposed to arrive on Monday.",
        "Can't reset my password, the link in the email is broken",
        "My invoice INV-2024-0042 shows the wrong VAT number, could you fix it?",
        "Hi, see https://app.example.com/settings/billing?tab=2 - the page is blank for me",
        "Please send the receipt to finance@example.com, not to my address. Thanks!",
    ],
    "de": [
        "Hallo, mein Passwort geht nicht",
        "Guten Tag, ich habe eine Frage zu meiner Rechnung vom März.",
        "Die App stürzt jedes Mal ab, wenn ich ein Foto hochladen will.",
        "Wie kann ich mein Abo kündigen?",
        "Ich komme nicht mehr in mein Konto, bitte helfen Sie mir.",
        "Meine Bestellung 100234 ist noch nicht angekommen, wo ist sie?",
        "Die Rechnung RE-2024-118 finde ich nicht unter https://example.de/konto/rechnungen",
        "ICH KANN MICH NICHT ANMELDEN",
    ],
    "fr": [
        "Bonjour, je n'arrive pas à télécharger ma facture.",
        "Merci pour votre aide, tout fonctionne maintenant.",
        "Comment puis-je changer l'adresse de livraison de ma commande ?",
        "J'ai été débité deux fois ce mois-ci, pouvez-vous vérifier ?",
        "L'application ne se lance plus depuis la mise à jour.",
        "Je ne peux pas payer",
        "Ma commande n° 55120 n'est pas arrivée, écrivez-moi à jean.dupont@example.fr",
    ],
    "es": [
        "Hola, me cobraron dos veces la suscripción de este mes.",
        "¿Cómo puedo cambiar la dirección de envío de mi pedido?",
        "No me llega el correo para restablecer la contraseña.",
        "Gracias por la ayuda, ya funciona todo.",
        "Quiero cancelar mi suscripción, por favor.",
        "Tengo un problema con el pedido #48213, no llegó nada",
    ],
    "pt": [
        "Olá, fui cobrado duas vezes pela assinatura deste mês.",
        "Como posso alterar o endereço de entrega do meu pedido?",
        "Não recebi o e-mail para redefinir a senha.",
        "Obrigado pela ajuda, já está tudo funcionando.",
        "Quero cancelar a minha assinatura, por favor.",
        "Olá! Vocês têm suporte em português?",
    ],
    "it": [
        "Buongiorno, mi avete addebitato due volte l'abbonamento di questo mese.",
        "Come posso cambiare l'indirizzo di consegna del mio ordine?",
        "Non ricevo l'email per reimpostare la password.",
        "Grazie per l'aiuto, adesso funziona tutto.",
        "Il pagamento non è andato a buon fine",
        "Ho una domanda sulla fattura 2024/117 che ho ricevuto ieri",
    ],
    "nl": [
        "Hallo, ik ben deze maand twee keer gefactureerd voor mijn abonnement.",
        "Hoe kan ik het afleveradres van mijn bestelling wijzigen?",
        "Ik ontvang de e-mail om mijn wachtwoord te resetten niet.",
        "Bedankt voor de hulp, het werkt nu.",
        "Ik wil graag mijn abonnement opzeggen.",
        "Ik heb een vraag",
    ],
    "ja": [
        "ログインできません。パスワードをリセットしても同じエラーが出ます。",
        "請求書の宛名を変更したいのですが、どうすればいいですか？",
        "注文番号12345の商品がまだ届いていません。確認をお願いします。",
        "ありがとうございます",
    ],
    "zh": [
        "你好，我的账户无法登录，重置密码后还是不行。",
        "请问如何修改发票抬头？",
        "订单号 #88231 还没有发货，请帮我查一下。",
        "我們的帳號被鎖定了，請幫忙處理。",
    ],
    "ko": [
        "안녕하세요, 비밀번호를 재설정했는데도 로그인이 안 됩니다.",
        "결제가 두 번 되었어요. 환불 부탁드립니다.",
        "감사합니다",
    ],
    "ru": [
        "Здравствуйте, не могу войти в свой аккаунт после смены пароля.",
        "С меня дважды списали деньги за подписку, верните, пожалуйста, один платёж.",
        "Где мой заказ? Номер 77812, оплачен неделю назад.",
    ],
    "uk": [
        "Добрий день, не можу увійти в свій акаунт після зміни пароля.",
        "З мене двічі списали гроші за підписку, поверніть, будь ласка, один платіж.",
        "Чи є у вас підтримка українською мовою?",
    ],
    "ar": [
        "مرحبا، لا أستطيع تسجيل الدخول إلى حسابي",
        "تم خصم المبلغ مرتين من بطاقتي، أرجو استرداد أحد المبلغين.",
    ],
    "he": [
        "שלום, אני לא מצליח להתחבר לחשבון שלי",
        "חויבתי פעמיים החודש, אפשר בבקשה לקבל החזר?",
    ],
    "el": [
        "Γεια σας, δεν μπορώ να συνδεθώ στον λογαριασμό μου",
        "Χρεώθηκα δύο φορές αυτόν τον μήνα, μπορείτε να μου επιστρέψετε τα χρήματα;",
    ],
    "th": [
        "สวัสดีครับ ผมไม่สามารถเข้าสู่ระบบได้",
        "ถูกเรียกเก็บเงินสองครั้งในเดือนนี้ ขอคืนเงินได้ไหมคะ",
    ],
    "hi": [
        "नमस्ते, मैं अपने खाते में लॉग इन नहीं कर पा रहा हूँ",
        "इस महीने मुझसे दो बार शुल्क लिया गया, कृपया रिफंड करें।",
    ],
}


@pytest.mark.parametrize(
    ("expected", "text"),
    [(lang, text) for lang, texts in MESSAGES.items() for text in texts],
)
def test_support_messages_are_told_apart(expected: str, text: str) -> None:
    assert detect_language(text) == expected


@pytest.mark.parametrize(
    ("expected", "text"),
    [
        # the script with most letters decides; a CJK character weighs as a short word
        ("ja", "Acme Cloud Managerの請求書がダウンロードできません"),
        ("ja", "Google Workspaceとの連携ができません。Admin ConsoleでOAuth tokenが無効です。"),
        ("zh", "我的 Acme Pro 订阅无法续费，请帮忙看看"),
        ("ko", "Zendesk에서 Intercom으로 데이터를 옮기고 싶어요"),
        ("ru", "Привет, у меня не работает Google Sign-In на iPhone"),
        ("en", "Our Japanese customers say the 設定 page does not open for them"),
        # one German word, or a German name, does not make a message German
        ("en", "Hi, I tried to pay but it says Zahlung fehlgeschlagen, what does that mean?"),
        ("en", "Danke! But the export still does not work for me"),
        ("en", "Subject: Refund\n\nHi, I want a refund for order 88123. Thanks, Jürgen Müller"),
        ("de", "Hi Anna, ich wollte fragen ob ihr auch eine API habt"),
    ],
)
def test_the_main_language_of_a_mixed_message_wins(expected: str, text: str) -> None:
    assert detect_language(text) == expected


@pytest.mark.parametrize(
    ("expected", "text"),
    [
        ("es", "Mi cuenta está bloqueada"),
        ("pt", "Minha conta está bloqueada"),
        ("es", "No puedo pagar con tarjeta"),
        ("pt", "Não posso pagar com cartão"),
        ("es", "Tengo un problema con la factura"),
        ("pt", "Tenho um problema com a fatura"),
        ("es", "Buenos días, quisiera saber el estado de mi pedido"),
        ("pt", "Bom dia, gostaria de saber o status do meu pedido"),
        ("de", "Die Rechnung ist falsch"),
        ("nl", "Die factuur is niet goed"),
        ("de", "Hallo, wo ist mein Paket"),
        ("nl", "Hallo, waar is mijn pakket"),
        ("de", "Was ist mit meiner Bestellung?"),
        ("nl", "Wat is er met mijn bestelling?"),
        ("de", "hallo ich habe ein problem mit der app"),
        ("nl", "hallo ik heb een probleem met de app"),
        ("it", "La fattura è sbagliata"),
        ("fr", "La facture est fausse"),
    ],
)
def test_neighbour_languages_that_share_words(expected: str, text: str) -> None:
    assert detect_language(text) == expected


def test_letter_hints_break_a_tie_and_only_a_tie() -> None:
    # "hallo" and "die" are German and Dutch alike: the letters decide, or nothing does
    assert detect_language("Hallo, die App") is None
    assert detect_language("Hallo, die Größe") == "de"
    assert detect_language("Hallo, die prijs") == "nl"
    # "como", "está", "a": Spanish and Portuguese alike; ç and ã are Portuguese
    assert detect_language("Como está a situação?") == "pt"
    # an ü does not outvote German-looking Dutch words, nor an ñ English ones
    assert detect_language("Ik heb een vraag over Müller") == "nl"
    assert detect_language("I have a question about my order for Peña") == "en"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n\t",
        "😀 👍 🎉",
        "12345 67890",
        "!!!???",
        "ok",
        "Thanks!",
        "Hallo",
        "Hola",
        "Hallo, mein",  # two words
        "Order #A-12345",
        "https://example.com/help/articles/123",
        "bob@example.com",
        "`TypeError: x is undefined`",
        "好",  # one ideograph: Chinese or Japanese
        "Да",  # Russian, Ukrainian, Bulgarian ...
        "Invoice PDF download",  # no function word at all
        "Mi pedido no llegó",  # mi and no are Spanish and Italian alike
    ],
)
def test_too_little_to_tell_is_none(text: str) -> None:
    assert detect_language(text) is None


@pytest.mark.parametrize(
    "text",
    [
        "Dzień dobry, nie mogę zalogować się do konta i nie działa to hasło",
        "Merhaba, siparişim hâlâ gelmedi, yardımcı olur musunuz?",
        "Hej, jeg kan ikke logge ind på min konto",
        "Halo, saya tidak bisa masuk ke akun saya",
    ],
)
def test_other_latin_languages_are_not_taken_for_one_of_ours(text: str) -> None:
    # Polish "do", "i", "to" or Danish "kan" are words of ours: their letters say otherwise
    assert detect_language(text) is None


def test_urls_addresses_numbers_and_code_do_not_count() -> None:
    english_tokens = (
        "https://www.example.com/the/and/for/you?with=the&from=is info@the-and.com "
        "order_id=1234 the_user.is_active getTheUser file.py 2024-01-31 #4521"
    )
    assert detect_language(english_tokens) is None
    assert detect_language(f"Hallo, ich kann {english_tokens} nicht öffnen, bitte") == "de"
    german_error = (
        "Hallo, ich bekomme diesen Fehler:\n```\nTraceback (most recent call last):\n"
        '  File "app.py", line 3, in <module>\n'
        '    raise ValueError("the value is not set for this user and it is a bug")\n```\n'
        "Was kann ich tun?"
    )
    assert detect_language(german_error) == "de"
    assert detect_language("Hallo, ich bekomme `the value is not set for the user` immer") == "de"


def test_cyrillic_is_ukrainian_only_with_ukrainian_letters() -> None:
    assert detect_language("Ми не можемо оплатити рахунок") == "ru"  # no і ї є ґ: Russian
    assert detect_language("Ми не можемо оплатити рахунок із картки") == "uk"
    assert detect_language("Мы не можем оплатить счёт") == "ru"


def test_japanese_needs_kana_and_a_few_kanji_quoted_in_english_stay_english() -> None:
    assert detect_language("日本のお客様から「設定」が開かないと言われました") == "ja"
    assert detect_language("東京都渋谷区") == "zh"  # kanji alone cannot be told from Chinese
    assert detect_language("The error says 接続できません when I try to log in") == "en"


def test_case_and_unicode_forms_do_not_matter() -> None:
    assert detect_language("MERCI POUR VOTRE AIDE") == "fr"
    decomposed = "Ne\u0301anmoins je n'arrive pas a\u0300 me connecter"  # é, à as two points
    assert detect_language(decomposed) == "fr"
    assert detect_language("ｌｏｇｉｎ ｄｏｅｓ ｎｏｔ ｗｏｒｋ ｆｏｒ ｍｅ") == "en"  # full-width
    assert detect_language("I can\u2019t log in to my account") == "en"  # curly apostrophe


@pytest.mark.parametrize(
    "sample",
    [
        "Hi, I can't log in to my account since yesterday, see https://x.example/a?b=1 #123. ",
        "Acme Cloud Managerの請求書がダウンロードできません。よろしくお願いします。",
        "Hallo, die Größe Здравствуйте 設定 로그인 ",
        "a",  # one word of 100 kB
        "ab1.",
        "`x",
    ],
)
def test_a_100_kb_text_is_quick(sample: str) -> None:
    text = (sample * (100_000 // len(sample) + 1))[:100_000]
    started = time.perf_counter()
    detect_language(text)
    assert time.perf_counter() - started < 0.05


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("en, de,FR", ("en", "de", "fr")),
        ("en,de", ("en", "de")),
        ("pt-BR, en_GB", ("pt", "en")),
        ("zh-Hant-TW", ("zh",)),
        ("es-419", ("es",)),
        ("de, DE, de-AT, en", ("de", "en")),
        ("en,", ("en",)),
        ("", ()),
        ("  ", ()),
    ],
)
def test_parse_languages_reads_codes(raw: str, expected: tuple[str, ...]) -> None:
    assert parse_languages(raw) == expected


@pytest.mark.parametrize(
    ("raw", "bad"),
    [
        ("english", "english"),
        ("en, german", "german"),
        ("e", "e"),
        ("deu", "deu"),
        ("en de", "en de"),
        ("en;de", "en;de"),
        ("12", "12"),
        ("en-", "en-"),
        ("pt-BR-", "pt-BR-"),
        ("dé", "dé"),
    ],
)
def test_parse_languages_names_the_bad_item(raw: str, bad: str) -> None:
    message = f"{bad!r} is not a two-letter language code like en or de"
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_languages(raw)


def test_language_names() -> None:
    assert language_name("de") == "German"
    assert language_name("ja") == "Japanese"
    assert language_name("DE") == "German"
    assert language_name("xx") == "xx"
    for code in MESSAGES:
        assert language_name(code) != code, code
