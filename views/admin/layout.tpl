<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<title>{{page_title}} · {{site['title']}} desk</title>
<link rel="stylesheet" href="{{static_url('style.css')}}">
<link rel="stylesheet" href="{{static_url('admin.css')}}">
<link rel="icon" href="{{static_url('favicon.svg')}}" type="image/svg+xml">
</head>
<body class="desk">
<a class="skip" href="#main">Skip to content</a>
<header class="desk-header">
  <div class="wrap admin-bar">
    <p class="admin-title"><strong>{{site['title']}}</strong> editorial desk</p>
    <nav aria-label="Main">
      <ul>
        % if logged_in:
        <li><a href="/admin">Queues</a></li>
        <li><a href="/admin/runs">Pipeline runs</a></li>
        <li><a href="/admin/cards">Card facts</a></li>
        % end
        <li><a href="/">The site</a></li>
      </ul>
    </nav>
    % if logged_in:
    <form method="post" action="/admin/logout" class="inline">
      <input type="hidden" name="csrf_token" value="{{csrf_token}}">
      <button type="submit" class="button button-quiet">Log out</button>
    </form>
    % end
  </div>
</header>
<main id="main" class="wrap">
  % if flash:
  <p class="flash" role="status">{{flash}}</p>
  % end
  {{!base}}
</main>
<footer class="desk-footer">
  <div class="wrap">
    <p>Readers see only what is approved here; every action is recorded on the article's review page.</p>
  </div>
</footer>
</body>
</html>
